import type { AttentionInputs, MaskTensor } from "../backend.js";
import { biasDims } from "../bias.js";
import type { DropoutStream } from "../dropout-rng.js";
import { ArgumentError } from "../errors.js";
import { isPadding } from "../mask.js";
import type { AttentionParams } from "../params.js";
import { defaultAlibiSlopes, type EntryMask, entryMask } from "../semantics.js";
import type { HostTensor } from "../tensor.js";
import { checkView, toFloat64 } from "./host-values.js";
import { gather, type SequenceDims, sequenceView } from "./sequence-view.js";

/**
 * One call of the reference, canonicalised to float64: q [b][h][sq][d], k [b][hg][skv][d],
 * v [b][hg][skv][dv], each entry's lengths and mask geometry, and the extra score terms. Forward and
 * backward both score rows from it, so they agree on every semantic by construction.
 */
export interface Problem {
  readonly p: AttentionParams;
  readonly q: Float64Array;
  readonly k: Float64Array;
  readonly v: Float64Array;
  readonly qDims: (x: number) => SequenceDims;
  readonly kvDims: (x: number) => SequenceDims;
  readonly masks: readonly EntryMask[];
  /** [B|1][H|1][sq][skv] and its broadcast strides (0 on broadcast dims). */
  readonly bias: { readonly values: Float64Array; readonly strideB: number; readonly strideH: number } | null;
  readonly slope: ((bi: number, hh: number) => number) | null;
  readonly attnMask: MaskTensor | null;
  /** The extra logit every row's normaliser has (off_by_one: 0, learnable: offset[h]), or null. */
  readonly extraLogit: ((hh: number) => number) | null;
  readonly dropout: DropoutStream | null;
}

function lengthsOf(
  name: string,
  cu: Int32Array | undefined,
  b: number,
  max: number,
  required: boolean,
): Int32Array {
  if (cu === undefined) {
    if (required) throw new ArgumentError(name, `Int32Array of b + 1 = ${b + 1} cumulative lengths`, cu);
    return new Int32Array(b).fill(max);
  }
  if (cu.length !== b + 1 || cu[0] !== 0) {
    throw new ArgumentError(name, `${b + 1} cumulative lengths starting at 0`, cu);
  }
  const lengths = new Int32Array(b);
  for (let i = 0; i < b; i++) {
    lengths[i] = cu[i + 1] - cu[i];
    if (lengths[i] < 0 || lengths[i] > max) {
      throw new ArgumentError(name, `non-decreasing, each length in [0, ${max}]`, [...cu]);
    }
  }
  return lengths;
}

function startsOf(
  name: string,
  padded: Int32Array | undefined,
  cu: Int32Array | undefined,
  b: number,
): Int32Array {
  const starts = padded ?? cu;
  if (starts === undefined || starts.length !== b + 1) {
    throw new ArgumentError(name, `Int32Array of b + 1 = ${b + 1} offsets`, starts);
  }
  return starts;
}

/** Builds the canonical problem of a call, validating the inputs against the params. */
export function buildProblem(inputs: AttentionInputs<HostTensor>, p: AttentionParams): Problem {
  const { b, h, hg, d, dv, sq, skv } = p;
  if (h % hg !== 0) throw new ArgumentError("params.hg", `a divisor of h = ${h}`, hg);
  const format = p.qkvFormat;
  const thd = format === "thd";
  // Sequence lengths come from cu_seqlens for thd and padding masks; otherwise every entry is full.
  const withLengths = thd || isPadding(p.maskType);
  const lq = lengthsOf("cuSeqlensQ", withLengths ? inputs.cuSeqlensQ : undefined, b, sq, withLengths);
  const lk = lengthsOf("cuSeqlensKv", withLengths ? inputs.cuSeqlensKv : undefined, b, skv, withLengths);
  const startsQ = thd
    ? startsOf("cuSeqlensQPadded", inputs.cuSeqlensQPadded, inputs.cuSeqlensQ, b)
    : undefined;
  const startsKv = thd
    ? startsOf("cuSeqlensKvPadded", inputs.cuSeqlensKvPadded, inputs.cuSeqlensKv, b)
    : undefined;
  const qDims = (x: number): SequenceDims => ({ b, s: sq, heads: h, x, lengths: lq, starts: startsQ });
  const kvDims = (x: number): SequenceDims => ({ b, s: skv, heads: hg, x, lengths: lk, starts: startsKv });
  const view = (name: string, t: HostTensor, dims: SequenceDims) =>
    gather(t, sequenceView(name, t, format, dims), dims);

  return {
    p,
    q: view("q", inputs.q, qDims(d)),
    k: view("k", inputs.k, kvDims(d)),
    v: view("v", inputs.v, kvDims(dv)),
    qDims,
    kvDims,
    masks: Array.from({ length: b }, (_, bi) => entryMask(p, lq[bi], lk[bi])),
    bias: biasOf(inputs, p),
    slope: slopeOf(inputs, p),
    attnMask: attnMaskOf(inputs, p),
    extraLogit: extraLogitOf(inputs, p),
    dropout:
      p.dropout > 0
        ? { seed: inputs.dropoutSeed ?? 0, offset: inputs.dropoutOffset ?? 0, p: p.dropout, heads: h }
        : null,
  };
}

function biasOf(inputs: AttentionInputs<HostTensor>, p: AttentionParams): Problem["bias"] {
  if (p.biasType !== "pre_scale_bias" && p.biasType !== "post_scale_bias") return null;
  const t = inputs.bias;
  if (t === undefined || p.biasShape === null) {
    throw new ArgumentError(
      "bias",
      `a tensor of shape ${p.biasShape ?? "(params.biasShape)"} for ${p.biasType}`,
      t,
    );
  }
  const dims = biasDims(p.biasShape, p.b, p.h, p.sq, p.skv);
  if (t.shape.length !== 4 || t.shape.some((n, i) => n !== dims[i])) {
    throw new ArgumentError("bias.shape", `[${dims}] (${p.biasShape})`, `[${t.shape}]`);
  }
  checkView("bias", t);
  const plane = p.sq * p.skv;
  return {
    values: toFloat64(t),
    strideB: dims[0] === 1 ? 0 : dims[1] * plane,
    strideH: dims[1] === 1 ? 0 : plane,
  };
}

function slopeOf(inputs: AttentionInputs<HostTensor>, p: AttentionParams): Problem["slope"] {
  if (p.biasType !== "alibi") return null;
  const { b, h } = p;
  if (p.alibiSlopes !== "h" && p.alibiSlopes !== "bh") {
    const slopes = defaultAlibiSlopes(h);
    return (_bi, hh) => slopes[hh];
  }
  const perBatch = p.alibiSlopes === "bh";
  const slopes = inputs.alibiSlopes;
  if (slopes === undefined || slopes.length !== (perBatch ? b * h : h)) {
    throw new ArgumentError("alibiSlopes", perBatch ? `[${b}, ${h}] slopes` : `[${h}] slopes`, slopes);
  }
  return perBatch ? (bi, hh) => slopes[bi * h + hh] : (_bi, hh) => slopes[hh];
}

function attnMaskOf(inputs: AttentionInputs<HostTensor>, p: AttentionParams): MaskTensor | null {
  if (p.maskType !== "arbitrary") return null;
  const m = inputs.attnMask;
  const ok =
    m !== undefined &&
    (m.shape[0] === p.b || m.shape[0] === 1) &&
    (m.shape[1] === p.h || m.shape[1] === 1) &&
    m.shape[2] === p.sq &&
    m.shape[3] === p.skv &&
    m.data.length === m.shape[0] * m.shape[1] * p.sq * p.skv;
  if (!ok)
    throw new ArgumentError("attnMask", `a MaskTensor [${p.b}|1, ${p.h}|1, ${p.sq}, ${p.skv}]`, m?.shape);
  return m;
}

function extraLogitOf(inputs: AttentionInputs<HostTensor>, p: AttentionParams): Problem["extraLogit"] {
  if (p.softmaxType === "vanilla") return null;
  if (p.softmaxType === "off_by_one") return () => 0;
  const t = inputs.softmaxOffset;
  if (t === undefined || t.shape.length !== 1 || t.shape[0] !== p.h) {
    throw new ArgumentError("softmaxOffset", `a tensor of shape [${p.h}] for learnable softmax`, t?.shape);
  }
  checkView("softmaxOffset", t);
  const offsets = toFloat64(t);
  return (hh) => offsets[hh];
}
