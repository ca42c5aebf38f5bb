import type { DType } from "./dtype.js";
import type { Fp8MetaState } from "./fp8.js";
import type { AttentionParams } from "./params.js";
import type { Eligibility } from "./rules.js";
import type { HostDType, HostTensor } from "./tensor.js";

/**
 * The TE backend family a backend belongs to. It decides which TE control disables it
 * (NVTE_FLASH_ATTN, NVTE_FUSED_ATTN, NVTE_UNFUSED_ATTN) and how it is named in logs.
 */
export const TE_FAMILIES = ["FlashAttention", "FusedAttention", "UnfusedDotProductAttention"] as const;
export type TeFamily = (typeof TE_FAMILIES)[number];

/** What a backend knows of the tensors it is given: enough for validation and selection. */
export interface TensorInfo {
  readonly shape: readonly number[];
  /** Element strides, when the tensor type exposes them (else contiguous is assumed). */
  readonly strides?: readonly number[];
  readonly dtype: HostDType;
  /** The storage the tensor views: equal values mean shared storage (packed layouts). */
  readonly storage?: unknown;
  readonly offset?: number;
}

/** Moves tensors of one kind to and from host memory; used by the conformance runner and tests. */
export interface TensorBridge<T> {
  /** "host", "cuda", "webgpu", "tfjs", "ort": calls whose tensors are of this kind may use the backend. */
  readonly kind: string;
  fromHost(t: HostTensor): Promise<T>;
  toHost(t: T): Promise<HostTensor>;
  info(t: T): TensorInfo;
  /** Frees the tensor's memory now (device buffers); no-op for garbage-collected tensors. */
  dispose(t: T): void;
  /**
   * Resolves once all work queued on the bridge's device has finished (asynchronous device APIs such
   * as CUDA). Absent where a resolved forward/backward promise already means the work is done.
   */
  synchronize?(): Promise<void>;
  /**
   * A timer of the bridge's device queue (CUDA events), for benchmarks that time as PyTorch does:
   * absent where the device has none.
   */
  deviceTimer?(): DeviceTimer;
}

/**
 * Marks two points in a device's queue of work: start() and stop() are queued with the work between
 * them, and once that work has finished (the bridge's synchronize), elapsedMs() is the device time
 * from start to stop, host gaps in the queue included (as torch.cuda.Event.elapsed_time). dispose()
 * frees it.
 */
export interface DeviceTimer {
  start(): void;
  stop(): void;
  elapsedMs(): number;
  dispose(): void;
}

/** A boolean mask over [b|1, h|1, sq, skv]; 1 = masked out (TE's convention for attention_mask). */
export interface MaskTensor {
  readonly shape: readonly [number, number, number, number];
  readonly data: Uint8Array;
}

/** Everything a forward call reads, in the backend's tensor type T. */
export interface AttentionInputs<T> {
  readonly q: T;
  readonly k: T;
  readonly v: T;
  /** [b + 1] cumulative sequence lengths; present for thd and for padding masks. */
  readonly cuSeqlensQ?: Int32Array;
  readonly cuSeqlensKv?: Int32Array;
  /** [b + 1] offsets of each sequence in the packed thd tensors when there is padding between sequences. */
  readonly cuSeqlensQPadded?: Int32Array;
  readonly cuSeqlensKvPadded?: Int32Array;
  /** pre/post_scale_bias, of shape params.biasShape. */
  readonly bias?: T;
  /** Custom ALiBi slopes, [h] or [b, h] (params.alibiSlopes); absent for default slopes. */
  readonly alibiSlopes?: Float64Array | Float32Array;
  /** The arbitrary mask (params.maskType === "arbitrary"). */
  readonly attnMask?: MaskTensor;
  /** The learnable softmax offset [h] (softmaxType "learnable"). */
  readonly softmaxOffset?: T;
  /** Dropout RNG seed and offset: the same pair gives the same dropout mask on every backend that follows our counter RNG. */
  readonly dropoutSeed?: number;
  readonly dropoutOffset?: number;
  /**
   * FP8 calls (params.fp8): the recipe's scaling state (fp8.ts, fp8-attention.ts). The backend
   * quantises with its scales and records the amaxes it observes into it; the caller updates the
   * scales after the step. Absent: a fresh state (every scale 1).
   */
  readonly fp8Meta?: Fp8MetaState;
}

/** What forward returns. `saved` is the backend's own state for backward. */
export interface ForwardResult<T> {
  /** Output, in q's format with head dim dv: [b, sq, h, dv], [sq, b, h, dv] or [tq, h, dv]. */
  readonly o: T;
  /** Log-sum-exp of each row's softmax normaliser, fp32 [b, h, sq] (rows past a sequence's length: -inf). */
  readonly lse: T;
  readonly saved: SavedForBackward;
}

/** Opaque per-call state that backward needs; `release` frees it when no backward will come. */
export interface SavedForBackward {
  release(): void;
}

export interface Gradients<T> {
  /** Gradients in the shapes of q, k, v as separate contiguous tensors of their format. */
  readonly dq: T;
  readonly dk: T;
  readonly dv: T;
  /** Present when params.biasRequiresGrad. */
  readonly dbias?: T;
  /** Present for softmaxType "learnable": [h]. */
  readonly dSoftmaxOffset?: T;
}

/** Facts about the machine selection depends on. */
export interface SelectionContext {
  /** CUDA compute capability as major*10+minor (90 for H100), or null without a CUDA device. */
  readonly cudaArch: number | null;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** NVTE_FUSED_ATTN_BACKEND (or its override in options): the preferred fused sub-backend, or null. */
  readonly preferredSubBackend?: number | null;
}

/**
 * A backend: the versioned interface every attention implementation offers. Selection asks
 * `explain` and runs `forward`/`backward`; `rank` orders candidates (lower first) as TE orders them.
 */
export interface AttentionBackend<T = unknown> {
  readonly specificationVersion: "v1";
  /** Stable id: "reference", "native.cpu", "cuda.flash", "cuda.cudnn", "webgpu.flash", "tfjs.native", ... */
  readonly id: string;
  readonly family: TeFamily;
  /**
   * For FusedAttention: which sub-backend (0 F16 max512, 1 F16 arbitrary seqlen, 2 FP8) runs params.
   * `preferred` is NVTE_FUSED_ATTN_BACKEND: as in TE, a preference taken where that sub-backend can
   * run the call (0 or 1 for short F16 sequences), else ignored.
   */
  subBackend?(p: AttentionParams, preferred?: number | null): number | undefined;
  readonly tensors: TensorBridge<T>;
  /** Storage dtypes the backend accepts. */
  readonly dtypes: readonly DType[];
  /** Candidate order (lower first); see selection.ts for TE's order. */
  rank(context: SelectionContext): number;
  explain(p: AttentionParams, context: SelectionContext): Eligibility;
  forward(inputs: AttentionInputs<T>, p: AttentionParams): Promise<ForwardResult<T>>;
  backward(saved: SavedForBackward, dO: T, p: AttentionParams): Promise<Gradients<T>>;
  /**
   * Optional: backward from given forward statistics instead of saved state. `o` is the output (q's
   * format, head dim dv) and `lse` the fp32 [b, h, sq] log-sum-exp the probabilities are normalised
   * with; context parallelism passes the global o and lse with one chunk of k/v to get that chunk's
   * gradients. The reference implements it.
   */
  backwardFromStats?(
    inputs: AttentionInputs<T>,
    o: T,
    lse: T,
    dO: T,
    p: AttentionParams,
  ): Promise<Gradients<T>>;
}
