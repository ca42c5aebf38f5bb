import {
  type AttentionBackend,
  type AttentionInputs,
  type AttentionParams,
  type Eligibility,
  type ForwardResult,
  type Gradients,
  getBackend,
  type HostTensor,
  type SavedForBackward,
  type SelectionContext,
  teRank,
} from "@te/core";
import * as tf from "@tensorflow/tfjs-core";
import { activeBackendIsHostMemory, hostView } from "./host-view.js";
import { tfjsTensors } from "./tensor-bridge.js";
import type { TfjsAttentionBackend } from "./tfjs-backend.js";
import { runAttentionKernel, tfjsKernelsReady } from "./tfjs-kernels.js";

/** The host-memory kernel backend tfjs.fused runs: TE's CPU flash kernel from @te/native. */
export const NATIVE_CPU_ID = "native.cpu";

class FusedSaved implements SavedForBackward {
  constructor(
    readonly kernel: AttentionBackend<HostTensor>,
    readonly saved: SavedForBackward,
  ) {}
  release(): void {
    this.saved.release();
  }
}

const toTf = (t: HostTensor): Promise<tf.Tensor> => tfjsTensors.fromHost(t);

/**
 * A FlashAttention-family backend for tf.Tensors that runs a host-memory kernel backend (registered in
 * core's registry with tensor kind "host") on views of tfjs's cpu tensors: inputs are read in place,
 * outputs come back as new tf.Tensors. `kernelId` is native.cpu for the registered tfjs.fused;
 * tests may point it at another host backend. Under tfjs's gradient tape (`attend`) it runs the tfjs
 * kernels that registerTfjsKernels installed for the same host kernel, when they are installed.
 */
export function createHostKernelBackend(kernelId: string, id = "tfjs.fused"): TfjsAttentionBackend {
  const kernelOf = () => getBackend(kernelId) as AttentionBackend<HostTensor> | undefined;
  const hostParams = (p: AttentionParams): AttentionParams => ({ ...p, device: "host" });

  const explain = (p: AttentionParams, context: SelectionContext): Eligibility => {
    const kernel = kernelOf();
    if (!kernel) {
      const message =
        kernelId === NATIVE_CPU_ID
          ? "needs TE's CPU kernel, which is not available (@te/native is not installed, its addon is not built, or it was not imported)"
          : `needs the host backend ${kernelId}, which is not registered`;
      return { ok: false, reasons: [{ rule: `${id}.kernel_missing`, message }] };
    }
    if (kernel.tensors.kind !== "host") {
      return {
        ok: false,
        reasons: [
          {
            rule: `${id}.kernel_tensors`,
            message: `${kernelId} takes ${kernel.tensors.kind} tensors, not host memory`,
          },
        ],
      };
    }
    if (!activeBackendIsHostMemory()) {
      return {
        ok: false,
        reasons: [
          {
            rule: `${id}.tfjs_backend`,
            message: `runs on tfjs's cpu backend only (active: ${tf.getBackend()})`,
          },
        ],
      };
    }
    if (!kernel.dtypes.includes(p.dtype)) {
      return {
        ok: false,
        reasons: [{ rule: `${id}.dtype`, message: `${kernelId} does not support dtype ${p.dtype}` }],
      };
    }
    const verdict = kernel.explain(hostParams(p), context);
    if (verdict.ok) return verdict;
    return {
      ok: false,
      reasons: verdict.reasons.map((r) => ({ rule: r.rule, message: `${kernelId} ${r.message}` })),
    };
  };

  return {
    specificationVersion: "v1",
    id,
    family: "FlashAttention",
    tensors: tfjsTensors,
    dtypes: ["fp32"],
    rank: (context) => teRank("FlashAttention", context.cudaArch),
    explain,
    attend: (inputs, p) => runAttentionKernel(kernelId, inputs, p),
    canAttend: () => tfjsKernelsReady(kernelId),
    async forward(inputs: AttentionInputs<tf.Tensor>, p: AttentionParams): Promise<ForwardResult<tf.Tensor>> {
      const kernel = kernelOf()!;
      const view = (t: tf.Tensor | undefined) => (t ? hostView(t) : undefined);
      const result = await kernel.forward(
        {
          ...inputs,
          q: hostView(inputs.q),
          k: hostView(inputs.k),
          v: hostView(inputs.v),
          bias: view(inputs.bias),
          softmaxOffset: view(inputs.softmaxOffset),
        },
        hostParams(p),
      );
      return {
        o: await toTf(result.o),
        lse: await toTf(result.lse),
        saved: new FusedSaved(kernel, result.saved),
      };
    },
    async backward(
      saved: SavedForBackward,
      dO: tf.Tensor,
      p: AttentionParams,
    ): Promise<Gradients<tf.Tensor>> {
      const s = saved as FusedSaved;
      const g = await s.kernel.backward(s.saved, hostView(dO), hostParams(p));
      return {
        dq: await toTf(g.dq),
        dk: await toTf(g.dk),
        dv: await toTf(g.dv),
        dbias: g.dbias && (await toTf(g.dbias)),
        dSoftmaxOffset: g.dSoftmaxOffset && (await toTf(g.dSoftmaxOffset)),
      };
    },
  };
}

/** tfjs.fused: TE's CPU kernel (native.cpu) on tfjs cpu tensors; eligible once @te/native is imported. */
export const tfjsFusedBackend = createHostKernelBackend(NATIVE_CPU_ID);
