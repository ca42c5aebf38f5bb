import { type BiasShape, type BiasType, isBiasShape, isBiasType } from "../bias.js";
import { ArgumentError } from "../errors.js";
import { isQkvFormat, type QkvFormat } from "../layout.js";
import { isMaskType, type MaskType } from "../mask.js";
import { isSoftmaxType, type SoftmaxType } from "../softmax.js";

/** One conformance case (FORMAT.md, "case.json"), with every default filled in. */
export interface ConformanceCase {
  readonly name: string;
  readonly seed: number;
  readonly b: number;
  readonly h: number;
  readonly hg: number;
  readonly d: number;
  readonly dv: number;
  readonly sq: number;
  readonly skv: number;
  readonly qkvFormat: QkvFormat;
  readonly mask: MaskType;
  readonly seqlensQ: readonly number[];
  readonly seqlensKv: readonly number[];
  readonly window: readonly [number, number];
  readonly bottomRightDiagonal: boolean;
  readonly bias: BiasType;
  readonly biasShape: BiasShape;
  readonly biasGrad: boolean;
  /** Custom ALiBi slopes, [h] or [b][h]; null for the default slopes. */
  readonly alibiSlopes: readonly number[] | readonly (readonly number[])[] | null;
  readonly softmaxScale: number;
  readonly softmaxType: SoftmaxType;
  readonly qScale: number;
  readonly kScale: number;
  readonly biasScale: number;
  readonly maskDensity: number;
}

type Json = Record<string, unknown>;

function positiveInt(json: Json, key: string, fallback?: number): number {
  const v = json[key] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new ArgumentError(`case.${key}`, "a positive integer", v);
  }
  return v;
}

function numberOr(json: Json, key: string, fallback: number): number {
  const v = json[key] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v))
    throw new ArgumentError(`case.${key}`, "a finite number", v);
  return v;
}

function oneOf<T>(json: Json, key: string, is: (x: unknown) => x is T, fallback: T, expected: string): T {
  const v = json[key] ?? fallback;
  if (!is(v)) throw new ArgumentError(`case.${key}`, expected, v);
  return v;
}

function lengths(json: Json, key: string, b: number, max: number): number[] {
  const v = json[key];
  if (v === undefined) return new Array<number>(b).fill(max);
  if (!Array.isArray(v) || v.length !== b || !v.every((x) => Number.isInteger(x) && x >= 0 && x <= max)) {
    throw new ArgumentError(`case.${key}`, `${b} integers in [0, ${max}]`, v);
  }
  return v as number[];
}

/** Parses and validates a case.json value. */
export function parseCase(json: unknown): ConformanceCase {
  if (typeof json !== "object" || json === null) throw new ArgumentError("case", "a JSON object", json);
  const j = json as Json;
  const name = j.name;
  if (typeof name !== "string" || name === "")
    throw new ArgumentError("case.name", "a non-empty string", name);
  const seed = j.seed;
  if (typeof seed !== "number" || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new ArgumentError("case.seed", "a uint32", seed);
  }
  const b = positiveInt(j, "b");
  const h = positiveInt(j, "h");
  const hg = positiveInt(j, "hg", h);
  if (h % hg !== 0) throw new ArgumentError("case.hg", `a divisor of h = ${h}`, hg);
  const d = positiveInt(j, "d");
  const sq = positiveInt(j, "sq");
  const skv = positiveInt(j, "skv", sq);
  const window = j.window ?? [-1, -1];
  if (!Array.isArray(window) || window.length !== 2 || !window.every((x) => Number.isInteger(x) && x >= -1)) {
    throw new ArgumentError("case.window", "[left, right], integers >= -1", window);
  }
  const bottomRightDiagonal = j.bottom_right_diagonal ?? true;
  if (typeof bottomRightDiagonal !== "boolean") {
    throw new ArgumentError("case.bottom_right_diagonal", "a boolean", bottomRightDiagonal);
  }
  const biasGrad = j.bias_grad ?? false;
  if (typeof biasGrad !== "boolean") throw new ArgumentError("case.bias_grad", "a boolean", biasGrad);
  const slopes = j.alibi_slopes ?? null;
  const isSlopeRow = (x: unknown): boolean =>
    Array.isArray(x) && x.length === h && x.every((s) => typeof s === "number" && Number.isFinite(s));
  if (
    slopes !== null &&
    !isSlopeRow(slopes) &&
    !(Array.isArray(slopes) && slopes.length === b && slopes.every(isSlopeRow))
  ) {
    throw new ArgumentError("case.alibi_slopes", `[h = ${h}] or [b = ${b}][h = ${h}] numbers`, slopes);
  }
  return {
    name,
    seed,
    b,
    h,
    hg,
    d,
    dv: positiveInt(j, "dv", d),
    sq,
    skv,
    qkvFormat: oneOf(j, "qkv_format", isQkvFormat, "bshd", "bshd, sbhd or thd"),
    mask: oneOf(j, "mask", isMaskType, "no_mask", "a mask type"),
    seqlensQ: lengths(j, "seqlens_q", b, sq),
    seqlensKv: lengths(j, "seqlens_kv", b, skv),
    window: [window[0], window[1]],
    bottomRightDiagonal,
    bias: oneOf(j, "bias", isBiasType, "no_bias", "a bias type"),
    biasShape: oneOf(j, "bias_shape", isBiasShape, "1hss", "1hss, b1ss, bhss or 11ss"),
    biasGrad,
    alibiSlopes: slopes as ConformanceCase["alibiSlopes"],
    softmaxScale: numberOr(j, "softmax_scale", 1 / Math.sqrt(d)),
    softmaxType: oneOf(j, "softmax_type", isSoftmaxType, "vanilla", "vanilla, off_by_one or learnable"),
    qScale: numberOr(j, "q_scale", 1),
    kScale: numberOr(j, "k_scale", 1),
    biasScale: numberOr(j, "bias_scale", 1),
    maskDensity: numberOr(j, "mask_density", 0.3),
  };
}
