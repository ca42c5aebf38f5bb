import type { AttentionInputs, MaskTensor } from "../backend.js";
import { biasDims } from "../bias.js";
import { roundTo } from "../codec.js";
import { ArgumentError } from "../errors.js";
import { type QkvFormat, type QkvLayoutGroup, qkvLayoutOf } from "../layout.js";
import { isPadding } from "../mask.js";
import { type AttentionParams, makeParams } from "../params.js";
import { fromFloat64, toFloat64 } from "../reference/host-values.js";
import { type HostTensor, numel } from "../tensor.js";
import type { ConformanceCase } from "./case.js";
import { generateValues, INPUT_STREAMS, uniformStream } from "./inputs.js";
import { inLayoutGroup } from "./packed-views.js";

/** Storage dtypes the conformance cases are run in. */
export type ConformanceDType = "fp32" | "fp16" | "bf16";

/**
 * A case's inputs as logical (batch-first) float64 values, quantised to the dtype of the run:
 * q [b, sq, h, d], k [b, skv, hg, d], v [b, skv, hg, dv], dO [b, sq, h, dv], bias (bias_shape),
 * mask [b, sq, skv] (1 = masked out), softmax offset [h] (kept in fp32, as TE keeps it).
 */
export interface CaseValues {
  readonly q: Float64Array;
  readonly k: Float64Array;
  readonly v: Float64Array;
  readonly dO: Float64Array;
  readonly bias?: Float64Array;
  readonly mask?: Uint8Array;
  readonly softmaxOffset?: Float64Array;
}

const usesBiasTensor = (c: ConformanceCase): boolean =>
  c.bias === "pre_scale_bias" || c.bias === "post_scale_bias";

function quantised(values: Float64Array, dtype: ConformanceDType): Float64Array {
  if (dtype !== "fp32") for (let i = 0; i < values.length; i++) values[i] = roundTo(dtype, values[i]);
  return values;
}

/** Regenerates a case's inputs bit-exactly from its seed (FORMAT.md, "Inputs"). */
export function generateCaseValues(c: ConformanceCase, dtype: ConformanceDType): CaseValues {
  const { seed, b, h, hg, d, dv, sq, skv } = c;
  const gen = (stream: number, n: number, scale: number) =>
    quantised(generateValues(seed, stream, n, scale), dtype);
  let mask: Uint8Array | undefined;
  if (c.mask === "arbitrary") {
    const u = uniformStream(seed, INPUT_STREAMS.mask, b * sq * skv);
    mask = Uint8Array.from(u, (x) => (x < c.maskDensity ? 1 : 0));
  }
  return {
    q: gen(INPUT_STREAMS.q, b * sq * h * d, c.qScale),
    k: gen(INPUT_STREAMS.k, b * skv * hg * d, c.kScale),
    v: gen(INPUT_STREAMS.v, b * skv * hg * dv, 1),
    dO: gen(INPUT_STREAMS.dO, b * sq * h * dv, 1),
    bias: usesBiasTensor(c)
      ? gen(INPUT_STREAMS.bias, numel(biasDims(c.biasShape, b, h, sq, skv)), c.biasScale)
      : undefined,
    mask,
    softmaxOffset:
      c.softmaxType === "learnable" ? generateValues(seed, INPUT_STREAMS.softmaxOffset, h, 1) : undefined,
  };
}

/** The canonical params of a case. */
export function caseParams(
  c: ConformanceCase,
  options: {
    dtype: ConformanceDType;
    device: string;
    isTraining: boolean;
    layoutGroup?: QkvLayoutGroup;
    thdGap?: number;
  },
): AttentionParams {
  const sum = (xs: readonly number[]) => xs.reduce((a, x) => a + x, 0);
  const thd = c.qkvFormat === "thd";
  const gap = options.thdGap ?? 0;
  const customSlopes = c.alibiSlopes === null ? null : Array.isArray(c.alibiSlopes[0]) ? "bh" : "h";
  return makeParams({
    qkvFormat: c.qkvFormat,
    qkvLayout: qkvLayoutOf(c.qkvFormat, options.layoutGroup ?? "hd_hd_hd"),
    dtype: options.dtype,
    device: options.device,
    b: c.b,
    h: c.h,
    hg: c.hg,
    d: c.d,
    dv: c.dv,
    sq: c.sq,
    skv: c.skv,
    tq: thd ? sum(c.seqlensQ) + c.b * gap : c.b * c.sq,
    tkv: thd ? sum(c.seqlensKv) + c.b * gap : c.b * c.skv,
    paddedThd: thd && gap > 0,
    maskType: c.mask,
    window: c.window,
    bottomRightDiagonal: c.bottomRightDiagonal,
    biasType: c.bias,
    biasShape: usesBiasTensor(c) ? c.biasShape : null,
    biasRequiresGrad: usesBiasTensor(c) && c.biasGrad,
    alibiSlopes: c.bias === "alibi" ? (customSlopes ?? "default") : null,
    softmaxType: c.softmaxType,
    softmaxScale: c.softmaxScale,
    isTraining: options.isTraining,
  });
}

/** Cumulative lengths [0, l0, l0 + l1, ...]. */
export function cuSeqlensOf(lengths: readonly number[]): Int32Array {
  const cu = new Int32Array(lengths.length + 1);
  lengths.forEach((l, i) => {
    cu[i + 1] = cu[i] + l;
  });
  return cu;
}

/** Dims of a [b, s, heads, x] tensor; `thdGap` padding rows follow each sequence of a thd tensor. */
export interface FormatDims {
  readonly b: number;
  readonly s: number;
  readonly heads: number;
  readonly x: number;
  readonly lengths: readonly number[];
  readonly thdGap?: number;
}

/** Row of each sequence's first token in a thd tensor (b + 1 entries; the last is the row count). */
export function thdStarts(lengths: readonly number[], gap = 0): Int32Array {
  return cuSeqlensOf(lengths.map((l) => l + gap));
}

/**
 * Where the values of (batch entry bi, position i) sit among the leading rows of a tensor in `format`:
 * bshd [b, s, ...] row bi*s + i, sbhd [s, b, ...] row i*b + bi, thd [t, ...] row starts[bi] + i.
 */
function rowOf(format: QkvFormat, b: number, s: number, starts: Int32Array, bi: number, i: number): number {
  if (format === "bshd") return bi * s + i;
  if (format === "sbhd") return i * b + bi;
  return starts[bi] + i;
}

/** Shape of a [b, s, heads, x] tensor in `format` (thd: the valid tokens, and the gaps if any). */
export function formatShape(format: QkvFormat, dims: FormatDims): number[] {
  const { b, s, heads, x } = dims;
  if (format === "bshd") return [b, s, heads, x];
  if (format === "sbhd") return [s, b, heads, x];
  return [thdStarts(dims.lengths, dims.thdGap)[b], heads, x];
}

/**
 * Logical [b, s, heads, x] values as a contiguous tensor of `format` and dtype (thd: valid tokens
 * packed; gap rows hold NaN, so a backend that reads them shows it).
 */
export function toFormat(
  values: Float64Array,
  format: QkvFormat,
  dims: FormatDims,
  dtype: ConformanceDType | "fp64",
): HostTensor {
  const { b, s, heads, x, lengths } = dims;
  const starts = thdStarts(lengths, dims.thdGap);
  const shape = formatShape(format, dims);
  const out = new Float64Array(numel(shape));
  if (format === "thd" && (dims.thdGap ?? 0) > 0) out.fill(Number.NaN);
  const row = heads * x;
  for (let bi = 0; bi < b; bi++) {
    const n = format === "thd" ? lengths[bi] : s;
    for (let i = 0; i < n; i++) {
      const from = (bi * s + i) * row;
      out.set(values.subarray(from, from + row), rowOf(format, b, s, starts, bi, i) * row);
    }
  }
  return fromFloat64(dtype, shape, out);
}

/**
 * A tensor of `format` read back as logical [b, s, heads, x] float64 values; for thd, positions past a
 * sequence's length are zero (gap rows are not read). Throws ArgumentError when the tensor's shape is
 * not the format's.
 */
export function fromFormat(t: HostTensor, format: QkvFormat, dims: FormatDims, name: string): Float64Array {
  const { b, s, heads, x, lengths } = dims;
  const shape = formatShape(format, dims);
  if (t.shape.length !== shape.length || t.shape.some((n, i) => n !== shape[i])) {
    throw new ArgumentError(name, `shape [${shape}]`, `[${t.shape}]`);
  }
  const values = toFloat64(t);
  const starts = thdStarts(lengths, dims.thdGap);
  const out = new Float64Array(b * s * heads * x);
  const row = heads * x;
  for (let bi = 0; bi < b; bi++) {
    const n = format === "thd" ? lengths[bi] : s;
    for (let i = 0; i < n; i++) {
      const from = rowOf(format, b, s, starts, bi, i) * row;
      out.set(values.subarray(from, from + row), (bi * s + i) * row);
    }
  }
  return out;
}

/** The dims of a case's q-side ([b, sq, h, x]) and kv-side ([b, skv, hg, x]) tensors. */
export function caseDims(c: ConformanceCase, thdGap = 0) {
  const gap = c.qkvFormat === "thd" ? thdGap : 0;
  return {
    qDims: (x: number): FormatDims => ({ b: c.b, s: c.sq, heads: c.h, x, lengths: c.seqlensQ, thdGap: gap }),
    kvDims: (x: number): FormatDims => ({
      b: c.b,
      s: c.skv,
      heads: c.hg,
      x,
      lengths: c.seqlensKv,
      thdGap: gap,
    }),
  };
}

/** One case's call on host tensors: params, the inputs in the case's format, and dO. */
export interface HostCall {
  readonly params: AttentionParams;
  readonly inputs: AttentionInputs<HostTensor>;
  readonly dO: HostTensor;
}

/**
 * Why a case cannot be fed in a layout group, or null: `3hd`/`h3d` pack q, k, v in one buffer (equal
 * heads, head dims and lengths), `hd_2hd`/`hd_h2d` pack k and v (equal head dims).
 */
export function layoutGroupProblem(c: ConformanceCase, group: QkvLayoutGroup): string | null {
  const sameLengths = c.sq === c.skv && c.seqlensQ.every((l, i) => l === c.seqlensKv[i]);
  if ((group === "3hd" || group === "h3d") && !(c.h === c.hg && c.d === c.dv && sameLengths)) {
    return `cannot be fed as ${group}: packing q, k, v needs h = hg, d = dv and equal q/kv lengths`;
  }
  if ((group === "hd_2hd" || group === "hd_h2d") && c.d !== c.dv) {
    return `cannot be fed as ${group}: packing k and v needs d = dv`;
  }
  return null;
}

/**
 * Feeds a case's values in its format: bshd as generated, sbhd transposed, thd as the valid tokens
 * with cu_seqlens; padding masks as cu_seqlens in every format, the arbitrary mask as a MaskTensor
 * [b, 1, sq, skv], custom ALiBi slopes as Float64Array, the learnable offset as fp32 [h]. With a
 * layout group other than hd_hd_hd, q/k/v are strided views of packed buffers (see packedViews).
 */
export function hostCall(
  c: ConformanceCase,
  values: CaseValues,
  options: {
    dtype: ConformanceDType;
    device?: string;
    isTraining?: boolean;
    layoutGroup?: QkvLayoutGroup;
    /** thd only: padding rows after each sequence, fed through cu_seqlens_padded (NaN-filled). */
    thdGap?: number;
  },
): HostCall {
  const group = options.layoutGroup ?? "hd_hd_hd";
  const problem = layoutGroupProblem(c, group);
  if (problem !== null)
    throw new ArgumentError("layoutGroup", `a layout group the case fits (${problem})`, group);
  const params = caseParams(c, {
    dtype: options.dtype,
    device: options.device ?? "host",
    isTraining: options.isTraining ?? true,
    layoutGroup: group,
    thdGap: options.thdGap,
  });
  const f = c.qkvFormat;
  const gap = f === "thd" ? (options.thdGap ?? 0) : 0;
  const { qDims, kvDims } = caseDims(c, gap);
  const withLengths = f === "thd" || isPadding(c.mask);
  const attnMask: MaskTensor | undefined = values.mask && { shape: [c.b, 1, c.sq, c.skv], data: values.mask };
  const slopes =
    c.alibiSlopes === null ? undefined : Float64Array.from((c.alibiSlopes as (number | number[])[]).flat());
  const qkv = inLayoutGroup(
    group,
    toFormat(values.q, f, qDims(c.d), options.dtype),
    toFormat(values.k, f, kvDims(c.d), options.dtype),
    toFormat(values.v, f, kvDims(c.dv), options.dtype),
  );
  if ("reason" in qkv) throw new ArgumentError("layoutGroup", qkv.reason, group);
  const inputs: AttentionInputs<HostTensor> = {
    ...qkv,
    cuSeqlensQ: withLengths ? cuSeqlensOf(c.seqlensQ) : undefined,
    cuSeqlensKv: withLengths ? cuSeqlensOf(c.seqlensKv) : undefined,
    cuSeqlensQPadded: gap > 0 ? thdStarts(c.seqlensQ, gap) : undefined,
    cuSeqlensKvPadded: gap > 0 ? thdStarts(c.seqlensKv, gap) : undefined,
    bias:
      values.bias && fromFloat64(options.dtype, biasDims(c.biasShape, c.b, c.h, c.sq, c.skv), values.bias),
    alibiSlopes: slopes,
    attnMask,
    softmaxOffset: values.softmaxOffset && fromFloat64("fp32", [c.h], values.softmaxOffset),
  };
  return { params, inputs, dO: toFormat(values.dO, f, qDims(c.dv), options.dtype) };
}
