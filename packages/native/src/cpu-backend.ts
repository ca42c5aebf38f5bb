import {
  ArgumentError,
  type AttentionBackend,
  type AttentionInputs,
  type AttentionParams,
  BackendError,
  type Eligibility,
  evaluateRules,
  fromFloat64,
  type Gradients,
  type HostTensor,
  hostTensor,
  hostTensors,
  type Rule,
  type SavedForBackward,
  teRank,
} from "@te/core";
import type { NativeBinding, NativeDesc, NativeForwardArgs } from "./binding.js";
import { inputArgs, outputLike, sequenceTensorView } from "./host-call.js";
import { loadBinding } from "./loader.js";
import { nativeDesc } from "./native-desc.js";

export const NATIVE_CPU_ID = "native.cpu";
/** The kernel family name in the C library's table. */
const FAMILY = "cpu";

/** What native.cpu cannot run (everything else, every mask, bias, softmax and layout, it can). */
export const NATIVE_CPU_RULES: readonly Rule[] = [
  { id: "native.cpu.fp8", rejects: (p) => p.fp8 !== null, message: "does not support FP8 attention" },
  {
    id: "native.cpu.dtype",
    rejects: (p) => !["fp32", "fp16", "bf16"].includes(p.dtype),
    message: (p) => `stores fp32, fp16 or bf16, not ${p.dtype}`,
  },
  {
    id: "native.cpu.device",
    rejects: (p) => p.device !== "host",
    message: (p) => `runs on host tensors, not ${p.device} tensors`,
  },
  {
    id: "native.cpu.context_parallel",
    rejects: (p) => p.cpSize > 1,
    message: "does not run context parallelism itself",
  },
];

/** Runs a C library call, turning its status errors into core's error classes. */
async function call(run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (e) {
    const err = e as Error & { code?: string; argument?: string };
    if (err.code === "TE_ERR_INVALID_ARGUMENT") {
      // The C library names the argument before the colon ("q: a buffer of at least ... expected").
      const text = err.message.replace(/^(forward|backward): /, "");
      const at = text.indexOf(": ");
      throw new ArgumentError(
        err.argument ?? (at > 0 ? text.slice(0, at) : "args"),
        at > 0 ? text.slice(at + 2) : text,
      );
    }
    throw new BackendError(NATIVE_CPU_ID, err.message, err.code ?? "TE_BACKEND_FAILED", { cause: e });
  }
}

class NativeCpuSaved implements SavedForBackward {
  constructor(
    public inputs: AttentionInputs<HostTensor> | null,
    public o: HostTensor | null,
    public lse: HostTensor | null,
  ) {}
  release(): void {
    this.inputs = null;
    this.o = null;
    this.lse = null;
  }
}

/** Host threads per call: TE_NATIVE_THREADS, else every core. */
function threads(): number {
  const n = Number(process.env.TE_NATIVE_THREADS);
  return Number.isInteger(n) && n > 0 ? n : 0;
}

function descOf(inputs: AttentionInputs<HostTensor>, p: AttentionParams): NativeDesc {
  return nativeDesc(
    p,
    { seed: inputs.dropoutSeed, offset: inputs.dropoutOffset },
    inputs.bias?.dtype ?? p.dtype,
  );
}

export function createNativeCpuBackend(binding: NativeBinding): AttentionBackend<HostTensor> {
  const forward = async (inputs: AttentionInputs<HostTensor>, p: AttentionParams) => {
    const base = inputArgs(inputs, p);
    const o = outputLike(inputs.q, p.dv, p.dtype);
    const lse = hostTensor("fp32", [p.b, p.h, p.sq]);
    const args: NativeForwardArgs = {
      ...base,
      o: sequenceTensorView("o", o, p, p.h, p.dv, false),
      lse: lse.data as Float32Array,
      threads: threads(),
    };
    await call(() => binding.forward(FAMILY, descOf(inputs, p), args));
    return { o, lse, saved: new NativeCpuSaved(inputs, o, lse) };
  };

  const backwardFromStats = async (
    inputs: AttentionInputs<HostTensor>,
    o: HostTensor,
    lse: HostTensor,
    dO: HostTensor,
    p: AttentionParams,
  ): Promise<Gradients<HostTensor>> => {
    if (lse.shape.length !== 3 || lse.shape[0] !== p.b || lse.shape[1] !== p.h || lse.shape[2] !== p.sq) {
      throw new ArgumentError("lse.shape", `[${p.b}, ${p.h}, ${p.sq}]`, `[${lse.shape}]`);
    }
    const lseData =
      lse.data instanceof Float32Array && lse.offset === 0 ? lse.data : Float32Array.from(lse.data);
    const base = inputArgs(inputs, p);
    const dq = outputLike(inputs.q, p.d, p.dtype);
    const dk = outputLike(inputs.k, p.d, p.dtype);
    const dv = outputLike(inputs.v, p.dv, p.dtype);
    const dbias =
      p.biasRequiresGrad && inputs.bias ? hostTensor(inputs.bias.dtype, inputs.bias.shape) : undefined;
    const dOffset = p.softmaxType === "learnable" ? new Float32Array(p.h) : undefined;
    await call(() =>
      binding.backward(FAMILY, descOf(inputs, p), {
        ...base,
        o: sequenceTensorView("o", o, p, p.h, p.dv, false),
        lse: lseData,
        dO: sequenceTensorView("dO", dO, p, p.h, p.dv, false),
        dq: sequenceTensorView("dq", dq, p, p.h, p.d, false),
        dk: sequenceTensorView("dk", dk, p, p.hg, p.d, true),
        dv: sequenceTensorView("dv", dv, p, p.hg, p.dv, true),
        dbias: dbias?.data,
        dSoftmaxOffset: dOffset,
        threads: threads(),
      }),
    );
    return {
      dq,
      dk,
      dv,
      dbias,
      dSoftmaxOffset:
        dOffset && inputs.softmaxOffset ? fromFloat64(inputs.softmaxOffset.dtype, [p.h], dOffset) : undefined,
    };
  };

  return {
    specificationVersion: "v1",
    id: NATIVE_CPU_ID,
    family: "FlashAttention",
    tensors: hostTensors,
    dtypes: ["fp32", "fp16", "bf16"],
    // Our flash-style kernel on the host: first among host backends when there is no GPU.
    rank: (context) => teRank("FlashAttention", context.cudaArch) + 1,
    explain(p): Eligibility {
      const rules = evaluateRules(NATIVE_CPU_RULES, p, undefined);
      if (!rules.ok) return rules;
      const reason = binding.explain(FAMILY, nativeDesc(p));
      return reason === "" ? rules : { ok: false, reasons: [{ rule: "native.cpu.kernel", message: reason }] };
    },
    forward,
    async backward(saved, dO, p) {
      const s = saved as NativeCpuSaved;
      if (!(s instanceof NativeCpuSaved))
        throw new ArgumentError("saved", "the saved state of a native.cpu forward", saved);
      if (s.inputs === null || s.o === null || s.lse === null) {
        throw new ArgumentError("saved", "saved state that was not released", "a released state");
      }
      return backwardFromStats(s.inputs, s.o, s.lse, dO, p);
    },
    backwardFromStats,
  };
}

/** native.cpu over the loaded addon (throws the loader's error when there is none). */
export function nativeCpuBackend(): AttentionBackend<HostTensor> {
  return createNativeCpuBackend(loadBinding());
}
