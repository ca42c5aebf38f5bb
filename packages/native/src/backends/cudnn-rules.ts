import {
  type AttentionParams,
  type BiasShape,
  type BiasType,
  isCausal,
  isFp8,
  type MaskType,
  qkvLayoutGroupOf,
  type Rule,
  type SelectionContext,
} from "@te/core";

/**
 * Transformer Engine's FusedAttention (cuDNN) eligibility as rule rows: the C function
 * nvte_get_fused_attn_backend (per cuDNN version and sm arch) and the FusedAttention filters of TE's
 * PyTorch get_attention_backend around it (arbitrary masks, MLA layouts, bias gradients, context
 * parallelism, sliding windows, determinism). Versions are cudnnGetVersion()'s integers: 8.9.7 is
 * 8907 (major*1000 + minor*100 + patch before cuDNN 9), 9.19.0 is 91900 (major*10000 + minor*100 +
 * patch from 9 on); TE compares them directly and so do we.
 *
 * Three sub-backends: 0 (F16 max512: fp16/bf16, seqlen <= 512, head dim 64, MHA), 1 (F16 arbitrary
 * seqlen) and 2 (FP8). Sub-backend 0 is built on cudnn-frontend's 0.x operation-graph interface,
 * which is being removed; TE removed sub-backend 0 (PR #2949) and routes those calls to sub-backend 1,
 * which covers every max512 feature. A family that does not build it passes `offersMax512: false`.
 */

/** The facts a rule needs besides the call: cuDNN's runtime version (0 = not loadable) and the GPU. */
export interface CudnnRuleContext {
  /** cudnnGetVersion() of the loaded library, e.g. 91900; 0 when libcudnn cannot be loaded. */
  readonly cudnnVersion: number;
  /** Compute capability major*10+minor (90 for H100), or null without a CUDA device. */
  readonly cudaArch: number | null;
  /** Whether the native family builds sub-backend 0 (F16 max512); TE's rules assume it does. */
  readonly offersMax512?: boolean;
  /** NVTE_FUSED_ATTN_BACKEND: 0 or 1 prefer that F16 sub-backend where both could run; null = TE's choice. */
  readonly preferredSubBackend?: number | null;
}

/**
 * The rule context of a selection: the loaded cuDNN's version, the selection's arch and its
 * NVTE_FUSED_ATTN_BACKEND preference (what cuda.cudnn's explain and subBackend pass on).
 */
export function cudnnRuleContext(
  cudnnVersion: number,
  selection: Pick<SelectionContext, "cudaArch" | "preferredSubBackend">,
  offersMax512 = true,
): CudnnRuleContext {
  return {
    cudnnVersion,
    cudaArch: selection.cudaArch,
    offersMax512,
    preferredSubBackend: selection.preferredSubBackend ?? null,
  };
}

export type FusedSubBackend = 0 | 1 | 2;

export const FUSED_SUB_BACKEND_NAMES: Record<FusedSubBackend, string> = {
  0: "F16_max512_seqlen",
  1: "F16_arbitrary_seqlen",
  2: "FP8",
};

/** A cuDNN version integer in words: 8907 -> "8.9.7", 91900 -> "9.19.0". */
export function cudnnVersionString(v: number): string {
  if (v >= 90000) return `${Math.floor(v / 10000)}.${Math.floor((v % 10000) / 100)}.${v % 100}`;
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 100)}.${v % 100}`;
}

/** Whether the call runs attention in FP8 (FP8 tensors in, or FP8 inside with fp8_dpa/fp8_mha). */
export const isFp8Attention = (p: AttentionParams): boolean =>
  isFp8(p.dtype) || (p.fp8 !== null && (p.fp8.dpa || p.fp8.mha));

/** The bias cuDNN is given (TE's fu_core_attention_bias_*). */
export interface CudnnBias {
  readonly type: BiasType;
  readonly shape: BiasShape | null;
  readonly requiresGrad: boolean;
}

/**
 * cuDNN applies ALiBi itself only with default slopes aligned top-left; custom slopes, or sq != skv
 * (where top-left and bottom-right alignment differ), become a materialised post_scale_bias of shape
 * [1, h, sq, skv] (per-head slopes) or [b, h, sq, skv] (per-batch slopes), without a gradient.
 */
export function cudnnBiasOf(p: AttentionParams): CudnnBias {
  if (p.biasType === "alibi" && (p.alibiSlopes === "h" || p.alibiSlopes === "bh" || p.sq !== p.skv)) {
    return { type: "post_scale_bias", shape: p.alibiSlopes === "bh" ? "bhss" : "1hss", requiresGrad: false };
  }
  return { type: p.biasType, shape: p.biasShape, requiresGrad: p.biasRequiresGrad };
}

/** The window TE passes to cuDNN: causal masks carry right = 0 (check_set_window_size). */
function cudnnWindow(p: AttentionParams): readonly [number, number] {
  return isCausal(p.maskType) ? [p.window[0], 0] : p.window;
}

const hasWindow = (p: AttentionParams): boolean => {
  const [left, right] = cudnnWindow(p);
  return left !== -1 || (right !== -1 && right !== 0);
};

/**
 * Whether the ragged (thd) offsets need 64 bits (TE's get_ragged_offset_dtype): the largest element
 * offset of q, k, v or o in its packed tensor reaches 2^31. Packed layouts stride over all three (or
 * both k and v) tensors per token.
 */
export function needs64BitRaggedOffsets(p: AttentionParams): boolean {
  if (p.qkvFormat !== "thd") return false;
  const group = qkvLayoutGroupOf(p.qkvLayout);
  const perToken = {
    q: group === "3hd" || group === "h3d" ? 3 * p.h * p.d : p.h * p.d,
    k:
      group === "3hd" || group === "h3d" ? 3 * p.h * p.d : group === "hd_hd_hd" ? p.hg * p.d : 2 * p.hg * p.d,
    v:
      group === "3hd" || group === "h3d"
        ? 3 * p.h * p.d
        : group === "hd_hd_hd"
          ? p.hg * p.dv
          : 2 * p.hg * p.dv,
    o: p.h * p.dv,
  };
  const largest = Math.max(perToken.q * p.tq, perToken.k * p.tkv, perToken.v * p.tkv, perToken.o * p.tq);
  return largest >= 2 ** 31;
}

type Row = Rule<CudnnRuleContext>;
const V = (c: CudnnRuleContext): string => `cuDNN ${cudnnVersionString(c.cudnnVersion)}`;
const sm = (c: CudnnRuleContext): string => `sm${c.cudaArch}`;
const arch = (c: CudnnRuleContext): number => c.cudaArch ?? 0;
const isPaddingOnly = (m: MaskType): boolean => m === "padding" || m === "padding_causal";

/** Sub-backend 1 (F16 arbitrary seqlen): one row per clause of TE's condition. */
const ARBITRARY_ROWS: readonly Row[] = [
  {
    id: "arch",
    rejects: (_p, c) => {
      const a = arch(c);
      const v = c.cudnnVersion;
      const ok =
        (v < 8903 && (a === 80 || a === 90)) || (v >= 8903 && a >= 80 && a < 100) || (v >= 90700 && a >= 80);
      return !ok;
    },
    message: (_p, c) =>
      `does not support ${sm(c)} with ${V(c)} (sm80/sm90 before 8.9.3, sm80-sm9x from 8.9.3, sm80+ from 9.7.0)`,
  },
  {
    id: "seqlen",
    rejects: (p, c) => c.cudnnVersion < 90000 && (p.sq % 64 !== 0 || p.skv % 64 !== 0),
    message: (p, c) =>
      `needs sq and skv divisible by 64 before cuDNN 9.0.0 (sq=${p.sq}, skv=${p.skv}, ${V(c)})`,
  },
  {
    id: "gqa",
    rejects: (p, c) => c.cudnnVersion < 8907 && p.h !== p.hg,
    message: (p, c) => `supports GQA/MQA (h=${p.h}, hg=${p.hg}) from cuDNN 8.9.7 (${V(c)})`,
  },
  {
    id: "head_dim",
    rejects: (p, c) => !headDimSupported(p, c),
    message: (p, c) =>
      `does not support head dims d=${p.d}, dv=${p.dv} ${p.isTraining ? "for training" : "for inference"} on ${sm(c)} with ${V(c)} ` +
      "(multiples of 8; <= 128; <= 256 on sm90 from 9.1.0 for inference and 9.5.0 for training; any for " +
      "inference on sm100+ from 9.9.0 and on any arch from 9.10.2; d=192/dv=128 training on sm100+ from 9.11.0)",
  },
  {
    id: "mla_hopper_bwd",
    // A known bug from cuDNN 9.11: Hopper backward with both dims >= 128 and d != dv (other than 192/128).
    rejects: (p, c) =>
      c.cudnnVersion >= 91100 &&
      p.isTraining &&
      arch(c) === 90 &&
      p.d >= 128 &&
      p.dv >= 128 &&
      !(p.d === 192 && p.dv === 128) &&
      p.d !== p.dv,
    message: (p, c) =>
      `has a known backward bug on sm90 for d=${p.d} != dv=${p.dv} (both >= 128) with ${V(c)}`,
  },
  {
    id: "bias",
    rejects: (p, c) => !biasSupported(p, c),
    message: (p, c) =>
      `does not support ${cudnnBiasOf(p).type} with mask ${p.maskType} on ${sm(c)} with ${V(c)} ` +
      "(bias needs 8.9.6+; ALiBi: sm90+ and a causal non-padding mask; post_scale_bias: sm90+, or sm80+ from 9.0.0)",
  },
  {
    id: "mask",
    rejects: (p, c) => !maskSupported(p, c),
    message: (p, c) =>
      `does not support mask ${p.maskType} for this call with ${V(c)} (${maskRequirement(p)})`,
  },
  {
    id: "padding_bias",
    rejects: (p, c) =>
      c.cudnnVersion >= 8906 && isPaddingOnly(p.maskType) && cudnnBiasOf(p).type === "post_scale_bias",
    message: (p) => `does not support post_scale_bias with mask ${p.maskType}`,
  },
  {
    id: "thd",
    rejects: (p, c) =>
      p.qkvFormat === "thd" &&
      !(arch(c) >= 90 && ((c.cudnnVersion >= 90100 && p.h === p.hg) || c.cudnnVersion >= 90600)),
    message: (p, c) =>
      `supports thd from sm90 with cuDNN 9.1.0 (MHA) or 9.6.0 (GQA/MQA) (${sm(c)}, ${V(c)}, h=${p.h}, hg=${p.hg})`,
  },
  {
    id: "window",
    rejects: (p, c) => !windowSupported(p, c),
    message: (p, c) =>
      `does not support window [${cudnnWindow(p).join(", ")}] with mask ${p.maskType} for this call with ${V(c)} ` +
      "(windows (left, 0) from 9.2.0 with top-left masks, bshd/sbhd, sq <= skv, no bias, no dropout; " +
      "from 9.6.0 also (left, right) windows with no_mask, bottom-right and padding masks, and thd)",
  },
  {
    id: "ragged_offsets",
    rejects: (p, c) => needs64BitRaggedOffsets(p) && c.cudnnVersion < 90500,
    message: (_p, c) =>
      `needs 64-bit ragged offsets (thd tensors of 2^31+ elements), supported from cuDNN 9.5.0 (${V(c)})`,
  },
  {
    id: "known_bug",
    rejects: (_p, c) => c.cudnnVersion === 91000 || c.cudnnVersion === 91001,
    message: (_p, c) => `is disabled for ${V(c)} (known F16 attention bugs in 9.10.0 and 9.10.1)`,
  },
  {
    id: "softmax",
    rejects: (p, c) => p.softmaxType !== "vanilla" && c.cudnnVersion < 91301,
    message: (p, c) => `supports softmax_type ${p.softmaxType} from cuDNN 9.13.1 (${V(c)})`,
  },
  {
    id: "blackwell_bwd",
    rejects: (p, c) => {
      if (arch(c) < 100 || !p.isTraining) return false;
      const noBias = cudnnBiasOf(p).type === "no_bias";
      if (!p.deterministic) return !(p.dropout === 0 || noBias);
      return !(c.cudnnVersion >= 91801 && p.dropout === 0 && noBias);
    },
    message: (p, c) =>
      p.deterministic
        ? `has a deterministic backward on ${sm(c)} from cuDNN 9.18.1 without dropout or bias (${V(c)})`
        : `does not support dropout together with a bias in backward on ${sm(c)}`,
  },
  {
    id: "swa_long_kv",
    // cuDNN 9.14.0 bug: non-causal masks with a window and skv > 1024.
    rejects: (p, c) =>
      c.cudnnVersion === 91400 &&
      p.skv > 1024 &&
      cudnnWindow(p)[0] !== -1 &&
      p.maskType !== "causal" &&
      p.maskType !== "causal_bottom_right",
    message: (p) =>
      `is disabled for cuDNN 9.14.0 with a window, mask ${p.maskType} and skv > 1024 (known bug)`,
  },
  // TE's cuda_graph clause (cuDNN <= 9.15.0, graph capture) does not apply: we never capture CUDA graphs.
];

function headDimSupported(p: AttentionParams, c: CudnnRuleContext): boolean {
  const { d, dv, isTraining: train, sq } = p;
  const v = c.cudnnVersion;
  const a = arch(c);
  if (d % 8 !== 0 || dv % 8 !== 0) return false;
  if (d <= 128 && dv <= 128) return true;
  if (d <= 256 && dv <= 256 && a === 90 && ((!train && v >= 90100) || (train && v >= 90500))) return true;
  if (!train && a >= 100 && v >= 90900 && sq > 1) return true;
  if (!train && v >= 91002 && (sq > 1 || (p.maskType !== "causal" && p.maskType !== "padding_causal")))
    return true;
  return d === 192 && dv === 128 && train && a >= 100 && v >= 91100;
}

function biasSupported(p: AttentionParams, c: CudnnRuleContext): boolean {
  const bias = cudnnBiasOf(p).type;
  const v = c.cudnnVersion;
  const a = arch(c);
  if (bias === "no_bias") return true;
  if (v < 8906) return false;
  if (bias === "alibi") return a >= 90 && (p.maskType === "causal" || p.maskType === "causal_bottom_right");
  if (bias === "post_scale_bias") return a >= 90 || (v >= 90000 && a >= 80);
  return false;
}

/** TE's mask clause: which masks each cuDNN version adds, and on which conditions. */
function maskSupported(p: AttentionParams, c: CudnnRuleContext): boolean {
  const v = c.cudnnVersion;
  const m = p.maskType;
  const dense = p.qkvFormat === "bshd" || p.qkvFormat === "sbhd";
  const plain = cudnnBiasOf(p).type === "no_bias" && p.dropout === 0;
  const aligned64 = p.sq % 64 === 0 && p.skv % 64 === 0;
  if (v < 8906) return m === "causal";
  if (dense && (m === "causal" || m === "padding" || m === "padding_causal" || m === "no_mask")) return true;
  if (v >= 90100 && p.qkvFormat === "thd" && isPaddingOnly(m)) return true;
  if (v >= 90300 && dense && m === "causal_bottom_right" && aligned64 && p.sq <= p.skv && plain) return true;
  if (v >= 90600 && m === "padding_causal_bottom_right" && aligned64 && p.sq <= p.skv && plain) return true;
  if (v >= 90700) {
    if (m === "no_mask" || m === "causal") return true;
    if ((isPaddingOnly(m) || m === "padding_causal_bottom_right") && plain) return true;
    if ((m === "causal_bottom_right" || m === "padding_causal_bottom_right") && p.sq <= p.skv) return true;
  }
  return false;
}

function maskRequirement(p: AttentionParams): string {
  switch (p.maskType) {
    case "causal_bottom_right":
      return "bshd/sbhd with sq <= skv from 9.3.0 (sq, skv % 64 == 0, no bias, no dropout before 9.7.0)";
    case "padding_causal_bottom_right":
      return "sq <= skv from 9.6.0 (sq, skv % 64 == 0, no bias, no dropout before 9.7.0)";
    case "padding":
    case "padding_causal":
      return "bshd/sbhd from 8.9.6, thd from 9.1.0";
    case "arbitrary":
      return "arbitrary masks are never supported";
    default:
      return "bshd/sbhd from 8.9.6, any format from 9.7.0";
  }
}

/**
 * TE's sliding-window clause (pre-9.2 none, 9.2 top-left, 9.6 also bottom-right, padding and thd).
 * As TE writes it, from 9.2 to 9.5 padding masks (window (-1, -1)) and bottom-right cross-attention
 * pass no branch, so those versions run them on no sub-backend; we keep TE's answer.
 */
function windowSupported(p: AttentionParams, c: CudnnRuleContext): boolean {
  const v = c.cudnnVersion;
  const [left, right] = cudnnWindow(p);
  const m = p.maskType;
  const a = arch(c);
  const fullOrCausal = left === -1 && (right === -1 || right === 0);
  const plain = cudnnBiasOf(p).type === "no_bias" && p.dropout === 0;
  if (v < 90200) return fullOrCausal;
  const v92 =
    (left === -1 && right === -1 && m === "no_mask") ||
    (right === 0 &&
      (m === "no_mask" || m === "causal" || (m === "causal_bottom_right" && p.sq === p.skv)) &&
      p.sq <= p.skv &&
      plain &&
      (p.qkvFormat === "bshd" || p.qkvFormat === "sbhd"));
  if (v92) return true;
  if (v < 90600) return false;
  if (fullOrCausal) return true;
  // Bottom-right masks with cross-attention on sm100 are fixed after 9.7.0.
  const bottomRightOk = a < 100 || (p.sq === p.skv && v <= 90700) || v > 90700;
  const maskOk =
    (m === "causal_bottom_right" && bottomRightOk) ||
    m === "no_mask" ||
    isPaddingOnly(m) ||
    (m === "padding_causal_bottom_right" && bottomRightOk);
  return maskOk && p.sq <= p.skv && plain;
}

const MAX512_LAYOUTS = new Set(["sb3hd", "sbhd_sb2hd", "bs3hd", "bshd_bs2hd", "bshd_bshd_bshd"]);

/** Sub-backend 0 (F16 max512). */
const MAX512_ROWS: readonly Row[] = [
  {
    id: "offered",
    rejects: (_p, c) => c.offersMax512 === false || c.cudnnVersion < 8901,
    message: (_p, c) =>
      c.offersMax512 === false
        ? "is not built: TE removed it (its cudnn-frontend 0.x interface is going away); sub-backend 1 covers its features"
        : `needs cuDNN 8.9.1+ (${V(c)})`,
  },
  {
    id: "arch",
    rejects: (_p, c) => arch(c) !== 80 && arch(c) !== 90,
    message: (_p, c) => `runs on sm80 and sm90 only (${sm(c)})`,
  },
  {
    id: "seqlen",
    rejects: (p) => p.sq > 512 || p.skv > 512 || p.sq % 64 !== 0 || p.skv % 64 !== 0,
    message: (p) => `needs sq, skv <= 512 and divisible by 64 (sq=${p.sq}, skv=${p.skv})`,
  },
  {
    id: "head_dim",
    rejects: (p) => p.d !== 64 || p.dv !== 64,
    message: (p) => `needs d = dv = 64 (d=${p.d}, dv=${p.dv})`,
  },
  { id: "gqa", rejects: (p) => p.h !== p.hg, message: "does not support GQA/MQA" },
  {
    id: "bias",
    rejects: (p) => {
      const b = cudnnBiasOf(p);
      return !(b.type === "no_bias" || (b.type === "post_scale_bias" && b.shape === "1hss"));
    },
    message: (p) =>
      `supports no_bias and post_scale_bias of shape [1, h, s, s] only (${cudnnBiasOf(p).type}, ${cudnnBiasOf(p).shape ?? "-"})`,
  },
  {
    id: "mask",
    rejects: (p) =>
      !(
        p.maskType === "no_mask" ||
        p.maskType === "causal" ||
        p.maskType === "padding" ||
        (p.maskType === "padding_causal" && p.sq === p.skv)
      ),
    message: (p) =>
      `supports no_mask, causal, padding and padding_causal with sq = skv (${p.maskType}, sq=${p.sq}, skv=${p.skv})`,
  },
  {
    id: "layout",
    rejects: (p) => !MAX512_LAYOUTS.has(p.qkvLayout),
    message: (p) => `supports layouts ${[...MAX512_LAYOUTS].join(", ")} (${p.qkvLayout})`,
  },
  { id: "window", rejects: (p) => hasWindow(p), message: "does not support sliding windows" },
  {
    id: "softmax",
    rejects: (p) => p.softmaxType !== "vanilla",
    message: (p) => `does not support softmax_type ${p.softmaxType}`,
  },
];

/** Sub-backend 2 (FP8). */
const FP8_ROWS: readonly Row[] = [
  { id: "arch", rejects: (_p, c) => arch(c) < 90, message: (_p, c) => `needs sm90+ (${sm(c)})` },
  {
    id: "bias",
    rejects: (p) => cudnnBiasOf(p).type !== "no_bias",
    message: (p) => `does not support ${cudnnBiasOf(p).type}`,
  },
  {
    id: "format",
    // TE's 8.9 t3hd/max512 branch is unreachable here: the format clause below it asks for bshd/sbhd.
    rejects: (p) => p.qkvFormat !== "bshd" && p.qkvFormat !== "sbhd",
    message: (p) => `supports bshd and sbhd only (${p.qkvFormat})`,
  },
  {
    id: "config",
    rejects: (p, c) => !fp8ConfigSupported(p, c),
    message: (p, c) =>
      `does not support d=${p.d}, dv=${p.dv}, sq=${p.sq}, skv=${p.skv}, mask ${p.maskType} ` +
      `${p.isTraining ? "for training" : "for inference"} on ${sm(c)} with ${V(c)} (from 9.2.1: d = dv = 128, sq and skv ` +
      "divisible by 128, no_mask or causal, sm90; from 9.7.0: no_mask/causal/padding/padding_causal, head dims " +
      "divisible by 16, <= 256 for sm90 inference, = 128 for sm90 training, <= 128 on sm100+)",
  },
  {
    id: "softmax",
    rejects: (p) => p.softmaxType !== "vanilla",
    message: (p) => `does not support softmax_type ${p.softmaxType} in FP8`,
  },
  {
    id: "known_bug",
    rejects: (_p, c) => c.cudnnVersion === 91000,
    message: "is disabled for cuDNN 9.10.0 (known FP8 attention bugs)",
  },
  { id: "sm120", rejects: (_p, c) => arch(c) === 120, message: "does not support FP8 on sm120" },
];

function fp8ConfigSupported(p: AttentionParams, c: CudnnRuleContext): boolean {
  const v = c.cudnnVersion;
  const a = arch(c);
  const { d, dv, isTraining: train, maskType: m } = p;
  const v921 =
    v >= 90201 &&
    a < 100 &&
    p.sq % 128 === 0 &&
    p.skv % 128 === 0 &&
    d === 128 &&
    dv === 128 &&
    (m === "causal" || m === "no_mask");
  const dimsOk =
    (a < 100 && !train && d <= 256 && dv <= 256) ||
    (a < 100 && train && d === 128 && dv === 128) ||
    (a >= 100 && d <= 128 && dv <= 128);
  const v97 =
    v >= 90700 &&
    dimsOk &&
    d % 16 === 0 &&
    dv % 16 === 0 &&
    (m === "no_mask" || m === "causal" || isPaddingOnly(m));
  return v921 || v97;
}

/**
 * Rows that hold for every sub-backend: cuDNN itself, the device, and the FusedAttention filters of
 * TE's get_attention_backend.
 */
const COMMON_ROWS: readonly Row[] = [
  {
    id: "device",
    rejects: (p) => p.device !== "cuda",
    message: (p) => `runs on cuda tensors, not ${p.device} tensors`,
  },
  {
    id: "library",
    rejects: (_p, c) => c.cudnnVersion <= 0,
    message: "cannot load cuDNN (libcudnn.so.9 or libcudnn.so.8 not found)",
  },
  {
    id: "version",
    rejects: (_p, c) => c.cudnnVersion > 0 && c.cudnnVersion < 8900,
    message: (_p, c) => `needs cuDNN 8.9.0+ (found ${cudnnVersionString(c.cudnnVersion)})`,
  },
  { id: "no_gpu", rejects: (_p, c) => c.cudaArch === null, message: "found no CUDA device" },
  {
    id: "arch",
    rejects: (_p, c) => c.cudaArch !== null && c.cudaArch < 80,
    message: (_p, c) => `does not support compute capability < sm80 (${sm(c)})`,
  },
  {
    id: "dtype",
    rejects: (p) => !(p.dtype === "fp16" || p.dtype === "bf16" || isFp8(p.dtype)),
    message: (p) => `does not support dtype ${p.dtype} (fp16, bf16, fp8e4m3, fp8e5m2)`,
  },
  {
    id: "arbitrary_mask",
    rejects: (p) => p.maskType === "arbitrary",
    message: "does not support arbitrary masks",
  },
  {
    id: "pre_scale_bias",
    rejects: (p) => p.biasType === "pre_scale_bias",
    message: "does not support pre_scale_bias (no_bias, post_scale_bias, alibi)",
  },
  {
    id: "mla_layout",
    rejects: (p) => p.d !== p.dv && qkvLayoutGroupOf(p.qkvLayout) !== "hd_hd_hd",
    message: (p) => `does not support MLA (d != dv) with qkv_layout ${p.qkvLayout}`,
  },
  // No dBias-shape row: TE computes dBias for every bias shape but [1, 1, 1, s] (PR #2537), which is not
  // a BiasShape here; cuDNN 9.19 reduces dS into [1|b, 1|h, s, s] (native/cudnn/tests checks all four).
  {
    id: "softmax_thd",
    rejects: (p) => p.softmaxType !== "vanilla" && p.qkvFormat === "thd",
    message: (p) => `does not support softmax_type ${p.softmaxType} with qkv_format thd`,
  },
  {
    id: "thd_sm120",
    rejects: (p, c) => p.qkvFormat === "thd" && c.cudaArch === 120,
    message: "does not support qkv_format thd on sm120",
  },
  {
    id: "window_fp8",
    rejects: (p) => hasWindow(p) && isFp8Attention(p),
    message: "does not support sliding window attention in FP8",
  },
  {
    id: "window_dropout",
    rejects: (p) => hasWindow(p) && !isFp8Attention(p) && p.dropout !== 0,
    message: (p) =>
      `supports sliding windows without dropout only (window [${p.window.join(", ")}], dropout ${p.dropout})`,
  },
  {
    id: "window_cross",
    rejects: (p) => hasWindow(p) && p.sq > p.skv,
    message: (p) => `does not support sliding windows with sq > skv (sq=${p.sq}, skv=${p.skv})`,
  },
  {
    id: "cp_bottom_right",
    rejects: (p) => p.cpSize > 1 && p.maskType.endsWith("bottom_right"),
    message: "does not support context parallelism with bottom-right causal masks",
  },
  {
    id: "cp_causal_cross",
    rejects: (p) =>
      p.cpSize > 1 && isCausal(p.maskType) && !p.maskType.endsWith("bottom_right") && p.sq !== p.skv,
    message: "does not support context parallelism with causal masks for cross-attention",
  },
  {
    id: "cp_bias",
    rejects: (p) =>
      p.cpSize > 1 &&
      (p.biasType === "pre_scale_bias" ||
        p.biasType === "alibi" ||
        (p.qkvFormat === "thd" && p.biasType !== "no_bias")),
    message: (p) =>
      `does not support context parallelism with bias type ${p.biasType}${p.qkvFormat === "thd" ? " for thd" : ""}`,
  },
  {
    id: "cp_fp8_mla",
    rejects: (p) => p.cpSize > 1 && isFp8Attention(p) && p.d !== p.dv,
    message: "does not support context parallelism with FP8 MLA attention",
  },
  {
    id: "cp_softmax",
    // TE allows it with cp_comm_type a2a only; our context parallelism is ring (p2p) style.
    rejects: (p) => p.cpSize > 1 && p.softmaxType !== "vanilla",
    message: (p) =>
      `does not support context parallelism with softmax_type ${p.softmaxType} outside cp_comm_type a2a`,
  },
];

const F16_ROWS_OK = (rows: readonly Row[], p: AttentionParams, c: CudnnRuleContext): boolean =>
  rows.every((r) => !r.rejects(p, c));

/** The F16 call an FP8 call's backward runs as with NVTE_FP8_DPA_BWD=0. */
const asF16 = (p: AttentionParams): AttentionParams => ({
  ...p,
  fp8: null,
  dtype: isFp8(p.dtype) ? "bf16" : p.dtype,
});

/**
 * TE's sub-backend choice: FP8 calls take 2 when its rows hold; F16 calls take 1 when its rows hold
 * and 0 otherwise (max512 when 0's rows hold); with sq, skv <= 512 NVTE_FUSED_ATTN_BACKEND may pick
 * the other of 0 and 1 when that one's rows hold. null: no sub-backend can run the call.
 */
export function fusedSubBackend(p: AttentionParams, context: CudnnRuleContext): FusedSubBackend | null {
  if (COMMON_ROWS.some((r) => r.rejects(p, context))) return null;
  return subBackendOfConfig(p, context);
}

function subBackendOfConfig(p: AttentionParams, c: CudnnRuleContext): FusedSubBackend | null {
  if (isFp8Attention(p)) return F16_ROWS_OK(FP8_ROWS, p, c) ? 2 : null;
  const arbitrary = F16_ROWS_OK(ARBITRARY_ROWS, p, c);
  if (p.sq > 512 || p.skv > 512) return arbitrary ? 1 : null;
  const max512 = F16_ROWS_OK(MAX512_ROWS, p, c);
  if (c.preferredSubBackend === 0 && max512) return 0;
  if (c.preferredSubBackend === 1 && arbitrary) return 1;
  return arbitrary ? 1 : max512 ? 0 : null;
}

const withPrefix = (
  rows: readonly Row[],
  sub: FusedSubBackend,
  when: (p: AttentionParams, c: CudnnRuleContext) => boolean,
): Row[] =>
  rows.map((r) => ({
    id: `cuda.cudnn.sub${sub}.${r.id}`,
    rejects: (p, c) => when(p, c) && r.rejects(p, c),
    message: (p, c) =>
      `sub-backend ${sub} (${FUSED_SUB_BACKEND_NAMES[sub]}) ${typeof r.message === "function" ? r.message(p, c) : r.message}`,
  }));

// A sub-backend's rows are reasons only when no sub-backend can run an otherwise eligible call.
const noF16SubBackend = (p: AttentionParams, c: CudnnRuleContext): boolean =>
  !isFp8Attention(p) && !COMMON_ROWS.some((r) => r.rejects(p, c)) && subBackendOfConfig(p, c) === null;
const noFp8SubBackend = (p: AttentionParams, c: CudnnRuleContext): boolean =>
  isFp8Attention(p) && !COMMON_ROWS.some((r) => r.rejects(p, c)) && subBackendOfConfig(p, c) === null;

/**
 * TE's determinism filter (NVTE_ALLOW_NONDETERMINISTIC_ALGO=0, training): sub-backend 0 is
 * deterministic; sub-backend 1 is through its workspace-optimisation backward path, which needs
 * sm90, cuDNN 8.9.5+ and no bias gradient; sub-backend 2 is not; Blackwell training is not.
 */
const DETERMINISM_ROWS: readonly Row[] = [
  {
    id: "cuda.cudnn.deterministic.fp8",
    rejects: (p, c) => p.deterministic && p.isTraining && fusedSubBackend(p, c) === 2,
    message: "sub-backend 2 (FP8) has no deterministic backward (NVTE_ALLOW_NONDETERMINISTIC_ALGO=0)",
  },
  {
    id: "cuda.cudnn.deterministic.workspace_path",
    rejects: (p, c) =>
      p.deterministic &&
      p.isTraining &&
      fusedSubBackend(p, c) === 1 &&
      (arch(c) < 90 || cudnnBiasOf(p).requiresGrad || c.cudnnVersion < 8905),
    message: (p, c) =>
      `sub-backend 1 is deterministic only on its workspace-optimisation backward path: sm90+, cuDNN 8.9.5+, no bias gradient (${sm(c)}, ${V(c)}${p.biasRequiresGrad ? ", bias gradient asked" : ""})`,
  },
  {
    id: "cuda.cudnn.deterministic.blackwell",
    rejects: (p, c) => p.deterministic && p.isTraining && arch(c) >= 100 && fusedSubBackend(p, c) !== null,
    message: (_p, c) => `has no deterministic backward on ${sm(c)} (NVTE_ALLOW_NONDETERMINISTIC_ALGO=0)`,
  },
];

/** NVTE_FP8_DPA_BWD=0: an FP8 call's backward runs on sub-backend 1 in F16, whose rows must hold too. */
const FP8_F16_BACKWARD_ROWS: readonly Row[] = ARBITRARY_ROWS.map((r) => ({
  id: `cuda.cudnn.fp8_f16_backward.${r.id}`,
  rejects: (p, c) =>
    p.isTraining &&
    p.fp8 !== null &&
    !p.fp8.backward &&
    fusedSubBackend(p, c) === 2 &&
    r.rejects(asF16(p), c),
  message: (p, c) =>
    `NVTE_FP8_DPA_BWD=0 runs backward on sub-backend 1 in F16, which ${typeof r.message === "function" ? r.message(asF16(p), c) : r.message}`,
}));

const RULES: readonly Row[] = [
  ...COMMON_ROWS.map((r) => ({ ...r, id: `cuda.cudnn.${r.id}` })),
  ...withPrefix(ARBITRARY_ROWS, 1, noF16SubBackend),
  ...withPrefix(MAX512_ROWS, 0, noF16SubBackend),
  ...withPrefix(FP8_ROWS, 2, noFp8SubBackend),
  ...FP8_F16_BACKWARD_ROWS,
  ...DETERMINISM_ROWS,
];

/** Every eligibility row of cuda.cudnn, in TE's order; evaluate with evaluateRules(rows, p, context). */
export function cudnnRules(): readonly Rule<CudnnRuleContext>[] {
  return RULES;
}
