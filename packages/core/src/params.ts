import type { BiasShape, BiasType } from "./bias.js";
import type { DType } from "./dtype.js";
import type { QkvFormat, QkvLayout } from "./layout.js";
import type { MaskType } from "./mask.js";
import type { SoftmaxType } from "./softmax.js";

/** How FP8 is used in this call (TE's DelayedScaling recipe flags, see fp8.ts). */
export interface Fp8Mode {
  /** fp8_dpa: F16/BF16 tensors in and out, FP8 inside the attention. */
  readonly dpa: boolean;
  /** fp8_mha: FP8 tensors in and out. */
  readonly mha: boolean;
  /** NVTE_FP8_DPA_BWD: backward in FP8 too (true) or in F16 (false). */
  readonly backward: boolean;
}

/**
 * One attention call, canonicalised: everything a backend needs to decide whether it can run it.
 * Tensors are not in here, only what their shapes and flags say; two calls with equal params take the
 * same backend (selection caches on `paramsKey`).
 */
export interface AttentionParams {
  readonly qkvLayout: QkvLayout;
  readonly qkvFormat: QkvFormat;
  /** Storage dtype of q, k, v. */
  readonly dtype: DType;
  /** Where the tensors live: the TensorBridge kind of the caller ("host", "cuda", "webgpu", "tfjs", "ort"). */
  readonly device: string;
  readonly b: number;
  readonly h: number;
  /** Number of k/v heads (TE's num_gqa_groups); h % hg === 0. */
  readonly hg: number;
  /** Head dim of q and k. */
  readonly d: number;
  /** Head dim of v and o. */
  readonly dv: number;
  /** Max sequence length of q (for thd, max_seqlen_q). */
  readonly sq: number;
  /** Max sequence length of k/v. */
  readonly skv: number;
  /** For thd: total tokens of q and kv (rows of the packed tensors). */
  readonly tq: number;
  readonly tkv: number;
  readonly maskType: MaskType;
  /** Sliding window [left, right]; -1 = unbounded; [-1, -1] = no window. */
  readonly window: readonly [number, number];
  /** Alignment of windows and ALiBi for no_mask/padding/arbitrary (causal masks fix their own). */
  readonly bottomRightDiagonal: boolean;
  readonly biasType: BiasType;
  /** Shape of the bias tensor for pre/post_scale_bias, else null. */
  readonly biasShape: BiasShape | null;
  readonly biasRequiresGrad: boolean;
  /** ALiBi slopes: default slopes, custom per head [h], custom per batch and head [b, h], or none. */
  readonly alibiSlopes: "default" | "h" | "bh" | null;
  readonly softmaxType: SoftmaxType;
  readonly softmaxScale: number;
  /** Dropout probability; 0 for inference. */
  readonly dropout: number;
  /** Whether backward will be asked for (gradients needed). */
  readonly isTraining: boolean;
  /** NVTE_ALLOW_NONDETERMINISTIC_ALGO=0: the backward pass must be bit-reproducible. */
  readonly deterministic: boolean;
  /** Whether cu_seqlens_q_padded / cu_seqlens_kv_padded were given (thd with padding between sequences). */
  readonly paddedThd: boolean;
  readonly fp8: Fp8Mode | null;
  /** Context-parallel group size (1 when not split). */
  readonly cpSize: number;
}

/** Every field of AttentionParams in the order paramsKey writes them (the compiler checks that none is missing). */
const PARAM_FIELDS = Object.keys({
  qkvLayout: 0,
  qkvFormat: 0,
  dtype: 0,
  device: 0,
  b: 0,
  h: 0,
  hg: 0,
  d: 0,
  dv: 0,
  sq: 0,
  skv: 0,
  tq: 0,
  tkv: 0,
  maskType: 0,
  window: 0,
  bottomRightDiagonal: 0,
  biasType: 0,
  biasShape: 0,
  biasRequiresGrad: 0,
  alibiSlopes: 0,
  softmaxType: 0,
  softmaxScale: 0,
  dropout: 0,
  isTraining: 0,
  deterministic: 0,
  paddedThd: 0,
  fp8: 0,
  cpSize: 0,
} satisfies Record<keyof AttentionParams, 0>) as (keyof AttentionParams)[];

/**
 * A stable string key of params, for caching decisions and compiled kernels: the fields' values in a
 * fixed order (whatever the order of the object's own keys), the FP8 mode as its three flags. Computed
 * on every DotProductAttention call, hence no sorting or replacer.
 */
export function paramsKey(p: AttentionParams): string {
  return JSON.stringify(
    PARAM_FIELDS.map((f) => (f === "fp8" && p.fp8 !== null ? [p.fp8.dpa, p.fp8.mha, p.fp8.backward] : p[f])),
  );
}

/** A params value with defaults for whatever is not given; for tests, the CLI and benchmarks. */
export function makeParams(
  partial: Partial<AttentionParams> & Pick<AttentionParams, "b" | "h" | "d" | "sq">,
): AttentionParams {
  const qkvFormat = partial.qkvFormat ?? "bshd";
  const layoutOfFormat = { bshd: "bshd_bshd_bshd", sbhd: "sbhd_sbhd_sbhd", thd: "thd_thd_thd" } as const;
  const skv = partial.skv ?? partial.sq;
  return {
    qkvLayout: partial.qkvLayout ?? layoutOfFormat[qkvFormat],
    qkvFormat,
    dtype: "fp32",
    device: "host",
    hg: partial.h,
    dv: partial.d,
    skv,
    tq: partial.b * partial.sq,
    tkv: partial.b * skv,
    maskType: "no_mask",
    window: [-1, -1],
    bottomRightDiagonal: true,
    biasType: "no_bias",
    biasShape: null,
    biasRequiresGrad: false,
    alibiSlopes: null,
    softmaxType: "vanilla",
    softmaxScale: 1 / Math.sqrt(partial.d),
    dropout: 0,
    isTraining: false,
    deterministic: false,
    paddedThd: false,
    fp8: null,
    cpSize: 1,
    ...partial,
  };
}
