/**
 * Conversions between float64 values and the bit patterns of fp16, bf16 and the two FP8 formats.
 * All round to nearest even, as the hardware's conversions do.
 */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function bf16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return 0x7fc0; // NaN
  const rounding = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + rounding) >>> 16) & 0xffff;
}

export function bf16Value(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

export function fp16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1) === 1)) m++;
    return sign | m;
  }
  const rest = mant & 0x1fff;
  let m = mant >>> 13;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1) === 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

export function fp16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** An FP8 format: e4m3 (max 448, no infinities) or e5m2 (max 57344, IEEE-like). */
interface Fp8Format {
  readonly expBits: number;
  readonly mantBits: number;
  readonly bias: number;
  readonly max: number;
}
export const FP8_E4M3: Fp8Format = { expBits: 4, mantBits: 3, bias: 7, max: 448 };
export const FP8_E5M2: Fp8Format = { expBits: 5, mantBits: 2, bias: 15, max: 57344 };

/** Value of an FP8 bit pattern. */
export function fp8Value(bits: number, f: Fp8Format): number {
  const sign = bits & 0x80 ? -1 : 1;
  const exp = (bits >>> f.mantBits) & ((1 << f.expBits) - 1);
  const mant = bits & ((1 << f.mantBits) - 1);
  const expMax = (1 << f.expBits) - 1;
  if (f === FP8_E4M3 && exp === expMax && mant === (1 << f.mantBits) - 1) return Number.NaN;
  if (f === FP8_E5M2 && exp === expMax) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  if (exp === 0) return sign * mant * 2 ** (1 - f.bias - f.mantBits);
  return sign * (1 + mant / (1 << f.mantBits)) * 2 ** (exp - f.bias);
}

/** The finite magnitudes of a format by bit pattern: they increase with the pattern (0 .. max). */
const magnitudeTables = new Map<Fp8Format, Float64Array>();
function magnitudesOf(f: Fp8Format): Float64Array {
  let table = magnitudeTables.get(f);
  if (!table) {
    const values: number[] = [];
    for (let b = 0; b < 0x80; b++) {
      const v = fp8Value(b, f);
      if (Number.isFinite(v) && v <= f.max) values.push(v);
    }
    table = Float64Array.from(values);
    magnitudeTables.set(f, table);
  }
  return table;
}

/** Nearest FP8 bit pattern of x (ties to even), saturating to ±max (as TE's casts do). */
export function fp8Bits(x: number, f: Fp8Format): number {
  if (Number.isNaN(x)) return f === FP8_E4M3 ? 0x7f : 0x7e;
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  const a = Math.min(Math.abs(x), f.max);
  const m = magnitudesOf(f);
  // Binary search for the last pattern whose magnitude is <= a, then take the nearer neighbour.
  let lo = 0;
  let hi = m.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (m[mid] <= a) lo = mid;
    else hi = mid - 1;
  }
  if (lo === m.length - 1) return sign | lo;
  const below = a - m[lo];
  const above = m[lo + 1] - a;
  const best = below < above || (below === above && (lo & 1) === 0) ? lo : lo + 1;
  return sign | best;
}

/** Rounds x to the nearest value the dtype can hold (quantise generated inputs for fp16/bf16 runs). */
export function roundTo(dtype: "fp32" | "fp16" | "bf16", x: number): number {
  if (dtype === "fp16") return fp16Value(fp16Bits(x));
  if (dtype === "bf16") return bf16Value(bf16Bits(x));
  return Math.fround(x);
}
