import {
  ArgumentError,
  type AttentionParams,
  type BiasType,
  biasDims,
  type DType,
  dropoutThreshold,
  isBottomRightAligned,
  isCausal,
  type QkvFormat,
  type SoftmaxType,
} from "@te/core";
import type { NativeDesc } from "./binding.js";

/** The te_* enum values of te_attention.h. */
export const FORMAT_CODE: Record<QkvFormat, number> = { bshd: 0, sbhd: 1, thd: 2 };
export const DTYPE_CODE: Partial<Record<DType, number>> = { fp32: 0, fp16: 1, bf16: 2 };
const BIAS_CODE: Record<BiasType, number> = { no_bias: 0, pre_scale_bias: 1, post_scale_bias: 2, alibi: 3 };
const SOFTMAX_CODE: Record<SoftmaxType, number> = { vanilla: 0, off_by_one: 1, learnable: 2 };

export function dtypeCode(name: string, dtype: string): number {
  const code = DTYPE_CODE[dtype as DType];
  if (code === undefined) throw new ArgumentError(name, "fp32, fp16 or bf16 storage", dtype);
  return code;
}

/** te_attn_desc of a call; the dropout seed and offset come with the inputs. */
export function nativeDesc(
  p: AttentionParams,
  dropout: { seed?: number; offset?: number } = {},
  biasDtype: string = p.dtype,
): NativeDesc {
  const [biasB, biasH] = p.biasShape ? biasDims(p.biasShape, p.b, p.h, p.sq, p.skv) : [1, 1];
  return {
    format: FORMAT_CODE[p.qkvFormat],
    dtype: DTYPE_CODE[p.dtype] ?? -1,
    b: p.b,
    h: p.h,
    hg: p.hg,
    d: p.d,
    dv: p.dv,
    sq: p.sq,
    skv: p.skv,
    tq: p.tq,
    tkv: p.tkv,
    causal: isCausal(p.maskType) ? 1 : 0,
    bottomRight: isBottomRightAligned(p.maskType, p.bottomRightDiagonal) ? 1 : 0,
    windowLeft: p.window[0],
    windowRight: p.window[1],
    arbitraryMask: p.maskType === "arbitrary" ? 1 : 0,
    biasType: BIAS_CODE[p.biasType],
    biasDtype: DTYPE_CODE[biasDtype as DType] ?? -1,
    biasB,
    biasH,
    alibiPerBatch: p.alibiSlopes === "bh" ? 1 : 0,
    softmaxType: SOFTMAX_CODE[p.softmaxType],
    scale: p.softmaxScale,
    dropout: p.dropout,
    dropoutThreshold: p.dropout > 0 ? dropoutThreshold(p.dropout) : 0,
    dropoutSeed: dropout.seed ?? 0,
    dropoutOffset: (dropout.offset ?? 0) >>> 0,
    deterministic: p.deterministic ? 1 : 0,
  };
}
