/**
 * The geometry of one attention call as the kernels see it: where each (batch, position, head, dim) element of
 * q, k, v, dO, the outputs and the bias lives (offset and strides in uniforms), each batch entry's lengths and
 * start rows, ALiBi slopes and the arbitrary mask (packed into one small `aux` buffer so that every program
 * stays within WebGPU's default of 8 storage buffers per stage).
 */
import {
  ArgumentError,
  type AttentionInputs,
  type AttentionParams,
  biasDims,
  contiguousStrides,
  defaultAlibiSlopes,
  isBottomRightAligned,
  isCausal,
  type QkvFormat,
} from "@te/core";
import type { UniformField } from "./program.js";
import type { WebGpuTensor } from "./tensor.js";

/** Every uniform the attention programs read (one struct for all of them keeps the programs simple). */
export const CALL_UNIFORMS: readonly UniformField[] = [
  ["b", "u32"], ["h", "u32"], ["hg", "u32"], ["sq", "u32"], ["skv", "u32"], ["d", "u32"], ["dv", "u32"],
  ...(["q", "k", "v", "do"] as const).flatMap((t) =>
    (["off", "sb", "ss", "sh", "sd"] as const).map((s): UniformField => [`${t}_${s}`, "u32"]),
  ),
  ...(["o", "dq", "dk", "dv"] as const).flatMap((t) => (["sb", "ss", "sh"] as const).map((s): UniformField => [`${t}_${s}`, "u32"])),
  ["bias_off", "u32"], ["bias_sb", "u32"], ["bias_sh", "u32"], ["bias_si", "u32"], ["bias_sj", "u32"],
  ["aux_slopes", "u32"], ["slope_sb", "u32"], ["aux_mask", "u32"], ["mask_sb", "u32"], ["mask_sh", "u32"],
  ["causal", "u32"], ["bottom_right", "u32"], ["win_left", "i32"], ["win_right", "i32"], ["scale", "f32"],
  // Dtype codes (storage.ts) and feature switches: uniforms rather than pipeline variants.
  ["dt_qkv", "u32"], ["dt_bias", "u32"], ["dt_sink", "u32"],
  ["bias_kind", "u32"], ["amask", "u32"], ["softmax", "u32"], ["dropout_on", "u32"], ["bias_grad", "u32"],
  ["dropout_threshold", "u32"], ["dropout_scale", "f32"], ["seed_lo", "u32"], ["seed_hi", "u32"], ["rng_offset", "u32"],
  // Word offsets of the second region of a shared output buffer (dV after dK; dBias after dQ).
  ["dv_at", "u32"], ["dbias_at", "u32"],
  // One-thread-per-item programs (reductions, conversions): how many items, where the source starts.
  ["count", "u32"], ["src_at", "u32"],
];

export interface CallLayout {
  readonly uniforms: Record<string, number>;
  /** seqinfo (lq, lk, q start row, k start row per batch entry), then ALiBi slopes, then mask bytes. */
  readonly aux: Uint32Array<ArrayBuffer>;
  /** Shapes of the outputs in the call's format: o, dq, dk, dv. */
  readonly shapes: { readonly o: number[]; readonly dq: number[]; readonly dk: number[]; readonly dv: number[] };
  /** Rows of the packed thd tensors (q, kv), or sq/skv for the other formats. */
  readonly rowsQ: number;
  readonly rowsKv: number;
}

interface View {
  readonly off: number;
  readonly sb: number;
  readonly ss: number;
  readonly sh: number;
  readonly sd: number;
}

/** Strides of (batch, position, head, dim) of a tensor in `format`; thd has no batch stride (rows come from aux). */
export function viewOf(t: Pick<WebGpuTensor, "strides" | "offset">, format: QkvFormat): View {
  const s = t.strides;
  if (format === "bshd") return { off: t.offset, sb: s[0], ss: s[1], sh: s[2], sd: s[3] };
  if (format === "sbhd") return { off: t.offset, sb: s[1], ss: s[0], sh: s[2], sd: s[3] };
  return { off: t.offset, sb: 0, ss: s[0], sh: s[1], sd: s[2] };
}

/** The logical shape of a q-like (heads, dim) tensor in `format`. */
function formatShape(format: QkvFormat, b: number, s: number, rows: number, heads: number, dim: number): number[] {
  if (format === "bshd") return [b, s, heads, dim];
  if (format === "sbhd") return [s, b, heads, dim];
  return [rows, heads, dim];
}

export function checkShape(name: string, t: WebGpuTensor, expected: readonly number[]): void {
  if (t.shape.length !== expected.length || t.shape.some((d, i) => d !== expected[i])) {
    throw new ArgumentError(`inputs.${name}.shape`, `[${expected.join(", ")}]`, t.shape);
  }
}

export function put(u: Record<string, number>, name: string, v: View): void {
  u[`${name}_off`] = v.off;
  u[`${name}_sb`] = v.sb;
  u[`${name}_ss`] = v.ss;
  u[`${name}_sh`] = v.sh;
  u[`${name}_sd`] = v.sd;
}

function seqLengths(cu: Int32Array | undefined, b: number, max: number, name: string): number[] {
  if (!cu) return new Array<number>(b).fill(max);
  if (cu.length !== b + 1) throw new ArgumentError(name, `${b + 1} cumulative lengths`, cu);
  const lengths = [];
  for (let i = 0; i < b; i++) {
    const l = cu[i + 1] - cu[i];
    if (l < 0 || l > max) throw new ArgumentError(name, `non-decreasing offsets with lengths at most ${max}`, cu);
    lengths.push(l);
  }
  return lengths;
}

export function callLayout(inputs: AttentionInputs<WebGpuTensor>, p: AttentionParams): CallLayout {
  const { b, h, hg, d, dv, sq, skv, qkvFormat: format } = p;
  const thd = format === "thd";
  const rowsQ = thd ? inputs.q.shape[0] : sq;
  const rowsKv = thd ? inputs.k.shape[0] : skv;
  checkShape("q", inputs.q, formatShape(format, b, sq, rowsQ, h, d));
  checkShape("k", inputs.k, formatShape(format, b, skv, rowsKv, hg, d));
  checkShape("v", inputs.v, formatShape(format, b, skv, rowsKv, hg, dv));
  if (thd && !inputs.cuSeqlensQ) throw new ArgumentError("inputs.cuSeqlensQ", "cumulative sequence lengths for the thd format");
  if (thd && !inputs.cuSeqlensKv) throw new ArgumentError("inputs.cuSeqlensKv", "cumulative sequence lengths for the thd format");

  const u: Record<string, number> = { b, h, hg, sq, skv, d, dv };
  put(u, "q", viewOf(inputs.q, format));
  put(u, "k", viewOf(inputs.k, format));
  put(u, "v", viewOf(inputs.v, format));
  put(u, "do", { off: 0, sb: 0, ss: 0, sh: 0, sd: 0 });
  const shapes = {
    o: formatShape(format, b, sq, rowsQ, h, dv),
    dq: formatShape(format, b, sq, rowsQ, h, d),
    dk: formatShape(format, b, skv, rowsKv, hg, d),
    dv: formatShape(format, b, skv, rowsKv, hg, dv),
  };
  for (const name of ["o", "dq", "dk", "dv"] as const) {
    const v = viewOf({ strides: contiguousStrides(shapes[name]), offset: 0 }, format);
    u[`${name}_sb`] = v.sb;
    u[`${name}_ss`] = v.ss;
    u[`${name}_sh`] = v.sh;
  }

  // Bias: broadcast dims read with stride 0.
  u.bias_off = u.bias_sb = u.bias_sh = u.bias_si = u.bias_sj = 0;
  if (p.biasType === "pre_scale_bias" || p.biasType === "post_scale_bias") {
    const bias = inputs.bias;
    if (!bias || !p.biasShape) throw new ArgumentError("inputs.bias", `a bias tensor for ${p.biasType}`);
    checkShape("bias", bias, biasDims(p.biasShape, b, h, sq, skv));
    u.bias_off = bias.offset;
    u.bias_sb = bias.shape[0] === 1 ? 0 : bias.strides[0];
    u.bias_sh = bias.shape[1] === 1 ? 0 : bias.strides[1];
    u.bias_si = bias.strides[2];
    u.bias_sj = bias.strides[3];
  }

  // aux: seqinfo, slopes, mask bytes.
  const lq = seqLengths(inputs.cuSeqlensQ, b, sq, "inputs.cuSeqlensQ");
  const lk = seqLengths(inputs.cuSeqlensKv, b, skv, "inputs.cuSeqlensKv");
  const startQ = inputs.cuSeqlensQPadded ?? inputs.cuSeqlensQ;
  const startKv = inputs.cuSeqlensKvPadded ?? inputs.cuSeqlensKv;
  const seqinfo: number[] = [];
  for (let i = 0; i < b; i++) seqinfo.push(lq[i], lk[i], thd ? startQ![i] : 0, thd ? startKv![i] : 0);
  const parts: Uint32Array[] = [Uint32Array.from(seqinfo)];
  let words = seqinfo.length;

  u.aux_slopes = u.slope_sb = 0;
  if (p.biasType === "alibi") {
    const slopes = inputs.alibiSlopes ?? defaultAlibiSlopes(h);
    const perBatch = slopes.length === b * h && p.alibiSlopes === "bh";
    if (!perBatch && slopes.length !== h) throw new ArgumentError("inputs.alibiSlopes", `${h} or ${b * h} slopes`, slopes);
    u.aux_slopes = words;
    u.slope_sb = perBatch ? h : 0;
    parts.push(new Uint32Array(new Float32Array(slopes).buffer));
    words += slopes.length;
  }

  u.aux_mask = u.mask_sb = u.mask_sh = 0;
  if (p.maskType === "arbitrary") {
    const mask = inputs.attnMask;
    if (!mask) throw new ArgumentError("inputs.attnMask", "a mask tensor for mask type arbitrary");
    const [mb, mh, ms, mk] = mask.shape;
    if ((mb !== 1 && mb !== b) || (mh !== 1 && mh !== h) || ms !== sq || mk !== skv) {
      throw new ArgumentError("inputs.attnMask.shape", `[${b} or 1, ${h} or 1, ${sq}, ${skv}]`, mask.shape);
    }
    u.aux_mask = words;
    u.mask_sh = mh === 1 ? 0 : sq * skv;
    u.mask_sb = mb === 1 ? 0 : mh * sq * skv;
    const packed = new Uint8Array(Math.ceil(mask.data.length / 4) * 4);
    packed.set(mask.data);
    parts.push(new Uint32Array(packed.buffer));
    words += packed.length / 4;
  }

  u.causal = isCausal(p.maskType) ? 1 : 0;
  u.bottom_right = isBottomRightAligned(p.maskType, p.bottomRightDiagonal) ? 1 : 0;
  u.win_left = p.window[0];
  u.win_right = isCausal(p.maskType) && p.window[1] < 0 ? 0 : p.window[1];
  u.scale = p.softmaxScale;
  u.dropout_threshold = 0;
  u.dropout_scale = 1;
  u.seed_lo = u.seed_hi = u.rng_offset = 0;
  u.dv_at = u.dbias_at = u.count = u.src_at = 0;
  const aux = new Uint32Array(words);
  let at = 0;
  for (const part of parts) {
    aux.set(part, at);
    at += part.length;
  }
  return { uniforms: u, aux, shapes, rowsQ, rowsKv };
}
