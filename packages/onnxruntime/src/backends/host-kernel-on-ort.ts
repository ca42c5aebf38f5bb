import {
  type AttentionBackend,
  type AttentionInputs,
  type AttentionParams,
  BackendError,
  type Eligibility,
  type ForwardResult,
  type Gradients,
  getBackend,
  type HostTensor,
  isContiguous,
  numel,
  type SavedForBackward,
  type SelectionContext,
  type TeFamily,
  teRank,
} from "@te/core";
import { ortModule } from "../runtime/ort-runtime.js";
import { type OrtTensor, ortDTypeOf, ortTensors } from "../tensors.js";

/** A CPU-resident ORT tensor as a host tensor over the same memory (no copy; kernels never write inputs). */
function hostView(t: OrtTensor, name: string, backendId: string): HostTensor {
  if (t.location !== "cpu") {
    throw new BackendError(
      backendId,
      `${name} is an ORT tensor on "${t.location}"; this backend runs on CPU tensors`,
    );
  }
  const shape = [...t.dims];
  const strides = shape.map((_, i) => numel(shape.slice(i + 1)));
  const dtype = ortDTypeOf(t);
  const data = t.data as Float32Array | Uint16Array;
  // Host fp16 tensors hold bit patterns in a Uint16Array; runtimes with Float16Array hand out those.
  const view =
    dtype === "fp16" && !(data instanceof Uint16Array)
      ? new Uint16Array(data.buffer, data.byteOffset, data.length)
      : data;
  return { dtype, shape, strides, offset: 0, data: view };
}

/** A host result as an ORT tensor: a contiguous result's memory is handed over, a strided one copied. */
async function ortOf(t: HostTensor): Promise<OrtTensor> {
  if (!isContiguous(t) || t.offset !== 0 || t.data.length !== numel(t.shape) || t.dtype === "fp64")
    return ortTensors.fromHost(t);
  const { Tensor } = await ortModule();
  return new Tensor(t.dtype === "fp16" ? "float16" : "float32", t.data as Float32Array, [...t.shape]);
}

class SavedByInner implements SavedForBackward {
  constructor(readonly inner: SavedForBackward) {}
  release(): void {
    this.inner.release();
  }
}

/**
 * Runs a host-tensor kernel backend (registered by another package, e.g. native.cpu from
 * @te/native) on ORT tensors: CPU ORT tensors are viewed as host tensors without copying, the
 * kernel runs, and its outputs become ORT tensors. When the kernel's package is not loaded the
 * backend says so as a reason.
 */
export function hostKernelOnOrt(options: {
  readonly id: string;
  readonly innerId: string;
  readonly innerPackage: string;
  /** The family reported before the inner backend is loaded. */
  readonly family: TeFamily;
}): AttentionBackend<OrtTensor> {
  const { id, innerId, innerPackage } = options;
  const inner = (): AttentionBackend<HostTensor> | undefined =>
    getBackend(innerId) as AttentionBackend<HostTensor> | undefined;
  const required = (): AttentionBackend<HostTensor> => {
    const backend = inner();
    if (!backend)
      throw new BackendError(id, `${innerId} is not registered (import ${innerPackage})`, "TE_UNSUPPORTED");
    return backend;
  };
  const innerParams = (p: AttentionParams, backend: AttentionBackend<HostTensor>): AttentionParams => ({
    ...p,
    device: backend.tensors.kind,
  });

  return {
    specificationVersion: "v1",
    id,
    get family(): TeFamily {
      return inner()?.family ?? options.family;
    },
    tensors: ortTensors,
    dtypes: ["fp32", "fp16"],
    rank(context: SelectionContext): number {
      return teRank(this.family, context.cudaArch) + 1;
    },
    subBackend(p: AttentionParams): number | undefined {
      const backend = inner();
      return backend?.subBackend?.(innerParams(p, backend));
    },
    explain(p: AttentionParams, context: SelectionContext): Eligibility {
      const backend = inner();
      if (!backend) {
        return {
          ok: false,
          reasons: [
            {
              rule: `${id}.not_loaded`,
              message: `needs ${innerId}, which is not loaded (import ${innerPackage})`,
            },
          ],
        };
      }
      if (backend.tensors.kind !== "host") {
        return {
          ok: false,
          reasons: [
            {
              rule: `${id}.tensor_kind`,
              message: `${innerId} runs on ${backend.tensors.kind} tensors, not CPU memory`,
            },
          ],
        };
      }
      if (!backend.dtypes.includes(p.dtype)) {
        return {
          ok: false,
          reasons: [{ rule: `${id}.dtype`, message: `${innerId} does not support dtype ${p.dtype}` }],
        };
      }
      const verdict = backend.explain(innerParams(p, backend), context);
      return verdict.ok ? { ok: true, note: `${innerId} on ORT CPU tensors` } : verdict;
    },
    async forward(inputs: AttentionInputs<OrtTensor>, p: AttentionParams): Promise<ForwardResult<OrtTensor>> {
      const backend = required();
      const view = (t: OrtTensor | undefined, name: string) =>
        t === undefined ? undefined : hostView(t, name, id);
      const hostInputs: AttentionInputs<HostTensor> = {
        ...inputs,
        q: hostView(inputs.q, "q", id),
        k: hostView(inputs.k, "k", id),
        v: hostView(inputs.v, "v", id),
        bias: view(inputs.bias, "bias"),
        softmaxOffset: view(inputs.softmaxOffset, "softmaxOffset"),
      };
      const out = await backend.forward(hostInputs, innerParams(p, backend));
      return { o: await ortOf(out.o), lse: await ortOf(out.lse), saved: new SavedByInner(out.saved) };
    },
    async backward(
      saved: SavedForBackward,
      dO: OrtTensor,
      p: AttentionParams,
    ): Promise<Gradients<OrtTensor>> {
      const backend = required();
      if (!(saved instanceof SavedByInner))
        throw new BackendError(id, "backward was given state saved by another backend's forward");
      const g = await backend.backward(saved.inner, hostView(dO, "dO", id), innerParams(p, backend));
      return {
        dq: await ortOf(g.dq),
        dk: await ortOf(g.dk),
        dv: await ortOf(g.dv),
        ...(g.dbias ? { dbias: await ortOf(g.dbias) } : {}),
        ...(g.dSoftmaxOffset ? { dSoftmaxOffset: await ortOf(g.dSoftmaxOffset) } : {}),
      };
    },
  };
}

/** ort.te: TE's own CPU kernels (native.cpu from @te/native) on ONNX Runtime CPU tensors. */
export const ortTe = hostKernelOnOrt({
  id: "ort.te",
  innerId: "native.cpu",
  innerPackage: "@te/native",
  family: "FlashAttention",
});
