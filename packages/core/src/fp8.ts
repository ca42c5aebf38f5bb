import { FP8_E4M3, FP8_E5M2 } from "./codec.js";
import { ArgumentError } from "./errors.js";
import { fp8DeviceStateOf, releaseFp8Meta, releaseFp8MetaOfEntry } from "./fp8-residency.js";
import { decodeValue, encodeValue } from "./reference/host-values.js";
import { type HostTensor, hostTensor, numel } from "./tensor.js";

/**
 * TE's DelayedScaling FP8 recipe and the per-tensor scaling state it drives: each FP8 tensor has a
 * scale (values are multiplied by it before the cast), its inverse (applied after reading back), and
 * a history of absolute maxima from which the next scale is computed.
 *
 * These functions are the reference of the recipe. A backend may keep a state in device memory
 * (fp8-residency.ts); the device code then mirrors recordAmax, amaxOfHistory and updateFp8Scale
 * (cuda.cudnn: native/cudnn/fp8_recipe_state.cu), and the functions here release such a state to the
 * host before they touch it.
 */

/** HYBRID: E4M3 in the forward pass, E5M2 for gradients (TE's default). */
export type Fp8Format = "HYBRID" | "E4M3" | "E5M2";
export type AmaxComputeAlgo = "max" | "most_recent";

export interface DelayedScaling {
  /** Scales are divided by 2^margin (headroom against growing amax). */
  readonly margin: number;
  readonly fp8Format: Fp8Format;
  readonly amaxHistoryLen: number;
  readonly amaxComputeAlgo: AmaxComputeAlgo | ((history: Float64Array) => number);
  /** Custom scale computation (amax, old scale, fp8 max, margin) -> new scale; TE's rule when absent. */
  readonly scalingFactorComputeAlgo?: (amax: number, scale: number, fp8Max: number, margin: number) => number;
  /** FP8 inside dot-product attention (F16/BF16 in and out). */
  readonly fp8Dpa: boolean;
  /** FP8 tensors in and out of attention (implies fp8Dpa). */
  readonly fp8Mha: boolean;
  /** Reduce amax across the data-parallel group (a no-op in one process). */
  readonly reduceAmax: boolean;
}

/** TE's DelayedScaling defaults, with the given fields changed; checks every field. */
export function delayedScaling(options: Partial<DelayedScaling> = {}): DelayedScaling {
  const r: DelayedScaling = {
    margin: 0,
    fp8Format: "HYBRID",
    amaxHistoryLen: 1024,
    amaxComputeAlgo: "max",
    fp8Dpa: false,
    fp8Mha: false,
    reduceAmax: true,
    ...options,
  };
  if (!Number.isFinite(r.margin) || r.margin < 0)
    throw new ArgumentError("recipe.margin", "a finite number >= 0", r.margin);
  if (!["HYBRID", "E4M3", "E5M2"].includes(r.fp8Format)) {
    throw new ArgumentError("recipe.fp8_format", '"HYBRID", "E4M3" or "E5M2"', r.fp8Format);
  }
  if (!Number.isInteger(r.amaxHistoryLen) || r.amaxHistoryLen < 1) {
    throw new ArgumentError("recipe.amax_history_len", "an integer >= 1", r.amaxHistoryLen);
  }
  if (
    typeof r.amaxComputeAlgo !== "function" &&
    r.amaxComputeAlgo !== "max" &&
    r.amaxComputeAlgo !== "most_recent"
  ) {
    throw new ArgumentError(
      "recipe.amax_compute_algo",
      '"max", "most_recent" or a function',
      r.amaxComputeAlgo,
    );
  }
  return r;
}

/** The tensors of FP8 attention: forward q, k, v, s (softmax output), o; backward dO, dP, dQ, dK, dV. */
export const FP8_FORWARD_TENSORS = ["q", "k", "v", "s", "o"] as const;
export const FP8_BACKWARD_TENSORS = ["dO", "dP", "dQ", "dK", "dV"] as const;
export type Fp8TensorName = (typeof FP8_FORWARD_TENSORS)[number] | (typeof FP8_BACKWARD_TENSORS)[number];

export type Fp8DType = "fp8e4m3" | "fp8e5m2";

/** The FP8 dtype a tensor is cast to under a format: HYBRID uses E5M2 for gradients only. */
export function fp8DTypeOf(format: Fp8Format, tensor: Fp8TensorName): Fp8DType {
  if (format === "E4M3") return "fp8e4m3";
  if (format === "E5M2") return "fp8e5m2";
  return (FP8_BACKWARD_TENSORS as readonly string[]).includes(tensor) ? "fp8e5m2" : "fp8e4m3";
}

export const fp8MaxOf = (dtype: Fp8DType): number => (dtype === "fp8e4m3" ? FP8_E4M3.max : FP8_E5M2.max);

export interface Fp8TensorMeta {
  readonly dtype: Fp8DType;
  scale: number;
  scaleInv: number;
  /** amaxHistory[0] collects the current step's amax; older steps follow. */
  readonly amaxHistory: Float64Array;
}

export type Fp8MetaState = Record<Fp8TensorName, Fp8TensorMeta>;

/** Fresh scaling state: scale 1, empty histories. */
export function createFp8Meta(recipe: DelayedScaling): Fp8MetaState {
  const entries = [...FP8_FORWARD_TENSORS, ...FP8_BACKWARD_TENSORS].map((name) => [
    name,
    {
      dtype: fp8DTypeOf(recipe.fp8Format, name),
      scale: 1,
      scaleInv: 1,
      amaxHistory: new Float64Array(recipe.amaxHistoryLen),
    },
  ]);
  return Object.fromEntries(entries) as Fp8MetaState;
}

/** Records a tensor's amax for the current step (the max of what was recorded this step). */
export function recordAmax(meta: Fp8TensorMeta, amax: number): void {
  releaseFp8MetaOfEntry(meta);
  // Math.max keeps NaN and inf, so the update sees them and keeps the old scale.
  meta.amaxHistory[0] = Math.max(meta.amaxHistory[0], Math.abs(amax));
}

/** The amax the next scale is computed from: the history's max, or the most recent entry. */
export function amaxOfHistory(history: Float64Array, algo: DelayedScaling["amaxComputeAlgo"]): number {
  if (typeof algo === "function") return algo(history);
  if (algo === "most_recent") return history[0];
  return history.reduce((m, x) => Math.max(m, x), 0);
}

/**
 * TE's scale update: scale = (fp8_max / amax) / 2^margin, keeping the old scale when amax is 0 or
 * not finite; scale_inv = 1 / scale. Then the history rolls one step (slot 0 starts the next step at 0).
 */
export function updateFp8Scale(meta: Fp8TensorMeta, recipe: DelayedScaling): void {
  releaseFp8MetaOfEntry(meta);
  const amax = amaxOfHistory(meta.amaxHistory, recipe.amaxComputeAlgo);
  const fp8Max = fp8MaxOf(meta.dtype);
  let scale = meta.scale;
  if (Number.isFinite(amax) && amax > 0) {
    scale = recipe.scalingFactorComputeAlgo
      ? recipe.scalingFactorComputeAlgo(amax, meta.scale, fp8Max, recipe.margin)
      : fp8Max / amax / 2 ** recipe.margin;
  }
  if (Number.isFinite(scale) && scale > 0) {
    meta.scale = scale;
    meta.scaleInv = 1 / scale;
  }
  meta.amaxHistory.copyWithin(1, 0, meta.amaxHistory.length - 1);
  meta.amaxHistory[0] = 0;
}

/** Updates the scales of every tensor in the state (after a step); on the device when it holds the state. */
export function updateFp8Meta(state: Fp8MetaState, recipe: DelayedScaling): void {
  if (fp8DeviceStateOf(state)?.update(recipe, "both")) return;
  releaseFp8Meta(state);
  for (const meta of Object.values(state)) updateFp8Scale(meta, recipe);
}

/** The largest |value| of a host tensor (NaN if it holds one). */
export function amaxOf(t: HostTensor): number {
  let m = 0;
  forEachValue(t, (x) => {
    m = Math.max(m, Math.abs(x));
  });
  return m;
}

function forEachValue(t: HostTensor, f: (x: number, logical: number) => void): void {
  const rank = t.shape.length;
  const n = numel(t.shape);
  const idx = new Array<number>(rank).fill(0);
  for (let e = 0; e < n; e++) {
    let at = t.offset;
    for (let d = 0; d < rank; d++) at += idx[d] * t.strides[d];
    f(decodeValue(t.dtype, t.data[at]), e);
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d] < t.shape[d]) break;
      idx[d] = 0;
    }
  }
}

/**
 * Casts a tensor to FP8 with a scale: fp8(x * scale), saturating; also records its amax in `meta`
 * when given (as TE's cast does). Returns a new contiguous tensor.
 */
export function quantizeFp8(t: HostTensor, dtype: Fp8DType, scale: number, meta?: Fp8TensorMeta): HostTensor {
  if (!Number.isFinite(scale) || scale <= 0) throw new ArgumentError("scale", "a finite number > 0", scale);
  const out = hostTensor(dtype, t.shape);
  let amax = 0;
  forEachValue(t, (x, e) => {
    amax = Math.max(amax, Math.abs(x));
    out.data[e] = encodeValue(dtype, x * scale);
  });
  if (meta) recordAmax(meta, amax);
  return out;
}

/** FP8 values back to numbers: value * scaleInv, as an fp32 (or fp64) tensor. */
export function dequantizeFp8(t: HostTensor, scaleInv: number, dtype: "fp32" | "fp64" = "fp32"): HostTensor {
  if (t.dtype !== "fp8e4m3" && t.dtype !== "fp8e5m2")
    throw new ArgumentError("tensor", "an fp8e4m3 or fp8e5m2 tensor", t.dtype);
  const out = hostTensor(dtype, t.shape);
  forEachValue(t, (x, e) => {
    out.data[e] = x * scaleInv;
  });
  return out;
}
