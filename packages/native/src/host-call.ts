import {
  ArgumentError,
  type AttentionInputs,
  type AttentionParams,
  checkView,
  defaultAlibiSlopes,
  expectedShape,
  type HostTensor,
  hostTensor,
  isPadding,
  type SequenceDims,
  toFloat64,
} from "@te/core";
import type { NativeForwardArgs, NativeView } from "./binding.js";
import { dtypeCode } from "./native-desc.js";

/**
 * Host tensors to the addon's argument block: strided views are passed as they are (the 15 layouts
 * are strides of the three formats), so q, k and v are read in place without copies.
 */

/** The storage a native view reads: fp32 as Float32Array, fp16/bf16 bit patterns as Uint16Array. */
function storageOf(name: string, t: HostTensor, dtype: string): HostTensor {
  if (t.dtype === "fp64" && dtype === "fp32") {
    // The reference hands out fp64 tensors for fp32 values; narrow once (rare: tests feeding its outputs).
    return { ...t, dtype: "fp32", data: Float32Array.from(t.data as Float64Array) };
  }
  if (t.dtype !== dtype) throw new ArgumentError(`${name}.dtype`, dtype, t.dtype);
  dtypeCode(name, t.dtype);
  const want = dtype === "fp32" ? Float32Array : Uint16Array;
  if (!(t.data instanceof want))
    throw new ArgumentError(`${name}.data`, `a ${want.name} for ${dtype}`, t.data);
  return t;
}

/** A [batch, seq, head, channel] view of a tensor of the call's format, validated against its shape. */
export function sequenceTensorView(
  name: string,
  t: HostTensor,
  p: AttentionParams,
  heads: number,
  channels: number,
  kv: boolean,
): NativeView {
  const s = storageOf(name, t, p.dtype);
  const dims: SequenceDims = { b: p.b, s: kv ? p.skv : p.sq, heads, x: channels, lengths: [] };
  const rows = p.qkvFormat === "thd" ? t.shape[0] : 0;
  const shape = expectedShape(p.qkvFormat, dims, rows);
  if (t.shape.length !== shape.length || t.shape.some((n, i) => n !== shape[i])) {
    throw new ArgumentError(`${name}.shape`, `[${shape}] (${p.qkvFormat})`, `[${t.shape}]`);
  }
  checkView(name, s);
  const st = s.strides;
  if (p.qkvFormat === "bshd")
    return { data: s.data, offset: s.offset, b: st[0], s: st[1], h: st[2], c: st[3] };
  if (p.qkvFormat === "sbhd")
    return { data: s.data, offset: s.offset, b: st[1], s: st[0], h: st[2], c: st[3] };
  return { data: s.data, offset: s.offset, b: 0, s: st[0], h: st[1], c: st[2] };
}

/** A new zeroed contiguous tensor in the format of `like` with `channels` per head. */
export function outputLike(like: HostTensor, channels: number, dtype: string): HostTensor {
  const shape = [...like.shape];
  shape[shape.length - 1] = channels;
  return hostTensor(dtype as HostTensor["dtype"], shape);
}

function cumulative(name: string, cu: Int32Array | undefined, b: number): Int32Array | undefined {
  if (cu === undefined) return undefined;
  if (!(cu instanceof Int32Array) || cu.length !== b + 1) {
    throw new ArgumentError(name, `an Int32Array of b + 1 = ${b + 1} cumulative lengths`, cu);
  }
  return cu;
}

/** Everything of the forward argument block except o and lse. */
export function inputArgs(
  inputs: AttentionInputs<HostTensor>,
  p: AttentionParams,
): Omit<NativeForwardArgs, "o" | "lse"> {
  const thd = p.qkvFormat === "thd";
  const withLengths = thd || isPadding(p.maskType);
  if (withLengths && (inputs.cuSeqlensQ === undefined || inputs.cuSeqlensKv === undefined)) {
    throw new ArgumentError(
      "cuSeqlensQ",
      `Int32Array of b + 1 = ${p.b + 1} cumulative lengths`,
      inputs.cuSeqlensQ,
    );
  }
  const args: Omit<NativeForwardArgs, "o" | "lse"> = {
    q: sequenceTensorView("q", inputs.q, p, p.h, p.d, false),
    k: sequenceTensorView("k", inputs.k, p, p.hg, p.d, true),
    v: sequenceTensorView("v", inputs.v, p, p.hg, p.dv, true),
    cuSeqlensQ: withLengths ? cumulative("cuSeqlensQ", inputs.cuSeqlensQ, p.b) : undefined,
    cuSeqlensKv: withLengths ? cumulative("cuSeqlensKv", inputs.cuSeqlensKv, p.b) : undefined,
    cuSeqlensQPadded: thd ? cumulative("cuSeqlensQPadded", inputs.cuSeqlensQPadded, p.b) : undefined,
    cuSeqlensKvPadded: thd ? cumulative("cuSeqlensKvPadded", inputs.cuSeqlensKvPadded, p.b) : undefined,
  };
  if (p.biasType === "pre_scale_bias" || p.biasType === "post_scale_bias") {
    args.bias = biasArg(inputs.bias, p);
  }
  if (p.biasType === "alibi") args.alibiSlopes = alibiArg(inputs, p);
  if (p.maskType === "arbitrary") {
    const m = inputs.attnMask;
    const ok =
      m !== undefined &&
      m.data instanceof Uint8Array &&
      (m.shape[0] === p.b || m.shape[0] === 1) &&
      (m.shape[1] === p.h || m.shape[1] === 1) &&
      m.shape[2] === p.sq &&
      m.shape[3] === p.skv &&
      m.data.length === m.shape[0] * m.shape[1] * p.sq * p.skv;
    if (!ok)
      throw new ArgumentError("attnMask", `a MaskTensor [${p.b}|1, ${p.h}|1, ${p.sq}, ${p.skv}]`, m?.shape);
    args.mask = m.data;
    args.maskB = m.shape[0];
    args.maskH = m.shape[1];
  }
  if (p.softmaxType === "learnable") {
    const t = inputs.softmaxOffset;
    if (t === undefined || t.shape.length !== 1 || t.shape[0] !== p.h) {
      throw new ArgumentError("softmaxOffset", `a tensor of shape [${p.h}] for learnable softmax`, t?.shape);
    }
    checkView("softmaxOffset", t);
    args.softmaxOffset = Float32Array.from(toFloat64(t));
  }
  return args;
}

function biasArg(t: HostTensor | undefined, p: AttentionParams): NonNullable<NativeForwardArgs["bias"]> {
  if (t === undefined || p.biasShape === null) {
    throw new ArgumentError(
      "bias",
      `a tensor of shape ${p.biasShape ?? "(params.biasShape)"} for ${p.biasType}`,
      t,
    );
  }
  const [bb, bh] = [p.biasShape.startsWith("b") ? p.b : 1, p.biasShape[1] === "h" ? p.h : 1];
  const dims = [bb, bh, p.sq, p.skv];
  if (t.shape.length !== 4 || t.shape.some((n, i) => n !== dims[i])) {
    throw new ArgumentError("bias.shape", `[${dims}] (${p.biasShape})`, `[${t.shape}]`);
  }
  dtypeCode("bias.dtype", t.dtype);
  checkView("bias", t);
  // The kernel reads bias rows with unit stride; any other last-dim stride is copied once.
  const unit = t.strides[3] === 1 || p.skv <= 1;
  const s = unit ? t : { ...hostTensor(t.dtype, t.shape), data: contiguousCopy(t) };
  return { data: s.data, offset: unit ? s.offset : 0, sb: s.strides[0], sh: s.strides[1], ss: s.strides[2] };
}

/** The tensor's elements, contiguous in logical order, in its own storage type (no rounding). */
function contiguousCopy(t: HostTensor): HostTensor["data"] {
  // fp32: the float64 values are exactly the stored floats.
  if (t.dtype === "fp32") return Float32Array.from(toFloat64(t));
  // fp16/bf16: copy the raw bit patterns.
  const src = t.data as Uint16Array;
  const out = new Uint16Array(t.shape.reduce((a, n) => a * n, 1));
  const [n0, n1, n2, n3] = t.shape;
  const [s0, s1, s2, s3] = t.strides;
  let n = 0;
  for (let a = 0; a < n0; a++)
    for (let b = 0; b < n1; b++)
      for (let c = 0; c < n2; c++)
        for (let d = 0; d < n3; d++) out[n++] = src[t.offset + a * s0 + b * s1 + c * s2 + d * s3];
  return out;
}

function alibiArg(inputs: AttentionInputs<HostTensor>, p: AttentionParams): Float32Array | undefined {
  if (p.alibiSlopes !== "h" && p.alibiSlopes !== "bh") return Float32Array.from(defaultAlibiSlopes(p.h));
  const n = p.alibiSlopes === "bh" ? p.b * p.h : p.h;
  const s = inputs.alibiSlopes;
  if (s === undefined || s.length !== n) {
    throw new ArgumentError(
      "alibiSlopes",
      p.alibiSlopes === "bh" ? `[${p.b}, ${p.h}] slopes` : `[${p.h}] slopes`,
      s,
    );
  }
  return Float32Array.from(s);
}
