import { type DType, isFp8 } from "./dtype.js";
import type { TeControls } from "./env.js";
import {
  type DelayedScaling,
  FP8_BACKWARD_TENSORS,
  FP8_FORWARD_TENSORS,
  type Fp8MetaState,
  type Fp8TensorMeta,
  type Fp8TensorName,
  fp8MaxOf,
  recordAmax,
  updateFp8Scale,
} from "./fp8.js";
import { fp8DeviceStateOf, releaseFp8Meta } from "./fp8-residency.js";
import type { Fp8Mode } from "./params.js";

/**
 * What TE's DotProductAttention does around attention under a DelayedScaling recipe with fp8_dpa or
 * fp8_mha (the scaling state itself is fp8.ts):
 *
 * forward  q, k, v  fp8_dpa: F16 in, cast to FP8 at the edge with the QKV scale (amax recorded);
 *                   fp8_mha: already FP8 (the previous layer's output cast recorded their amax).
 *          s        the softmax output P, quantised inside the kernel with the S scale; the kernel
 *                   reports amax(P).
 *          o        written in FP8 with the O scale (kernel reports amax(O)); fp8_dpa casts it back to
 *                   F16 at the edge, fp8_mha hands the FP8 tensor on.
 * backward dO       cast to FP8 (E5M2 under HYBRID) at the edge with the dO scale (fp8_dpa), or given.
 *          dP       dS quantised inside the kernel with the dP scale (kernel reports its amax).
 *          dQ/dK/dV written in FP8 with the dQKV scale (kernel reports the amax); fp8_dpa casts back.
 * q, k and v share one scale in TE (its META_QKV entry), and dQ, dK, dV share one (META_DQKV): we
 * keep the per-tensor entries of Fp8MetaState and record the shared amax into each, so their
 * scales stay equal. After each step the scales are updated from the amax history (updateFp8Meta).
 * NVTE_FP8_DPA_BWD=0 keeps backward in F16 (on the F16 q, k, v and the dequantised O): the
 * backward entries are then neither used nor recorded.
 */

/**
 * The Fp8Mode of a call under a recipe and TE's controls, or null when attention is not in FP8.
 * FP8 storage of q, k, v means fp8_mha whatever the recipe says; fp8_mha implies fp8_dpa (TE sets both).
 */
export function fp8AttentionMode(
  recipe: DelayedScaling | null,
  controls: Pick<TeControls, "fp8DpaBackward">,
  storage?: DType,
): Fp8Mode | null {
  const fp8Storage = storage !== undefined && isFp8(storage);
  if (!fp8Storage && (recipe === null || !(recipe.fp8Dpa || recipe.fp8Mha))) return null;
  return { dpa: true, mha: fp8Storage || (recipe?.fp8Mha ?? false), backward: controls.fp8DpaBackward };
}

/**
 * The S scale the kernel quantises probabilities with: the recipe's, capped at the format's max.
 * cuDNN's FP8 attention quantises the unnormalised exp(s - rowmax), which reaches 1 in every row
 * (cuDNN's own FP8 tests fix amax_S = 1), while the amax it reports for S is that of the normalised P;
 * a recipe scale from that amax (fp8_max / amax_S > fp8_max when no probability reaches 1) would
 * saturate every row's largest terms: on the H200 (cuDNN 9.19) an uncapped no_mask forward came out
 * at half the F16 output.
 */
export function kernelScaleOfS(meta: Pick<Fp8TensorMeta, "scale" | "dtype">): number {
  return Math.min(meta.scale, fp8MaxOf(meta.dtype));
}

/** Where each tensor of FP8 attention is quantised: at the call's edge, or inside the kernel. */
export const FP8_ATTENTION_QUANTISATION: Readonly<Record<Fp8TensorName, "edge" | "kernel">> = {
  q: "edge",
  k: "edge",
  v: "edge",
  s: "kernel",
  o: "kernel",
  dO: "edge",
  dP: "kernel",
  dQ: "kernel",
  dK: "kernel",
  dV: "kernel",
};

/** The tensors that share one TE scale; recording into one records into all. */
const SHARED_SCALE_GROUPS: readonly (readonly Fp8TensorName[])[] = [
  ["q", "k", "v"],
  ["dQ", "dK", "dV"],
];

/**
 * Records the amax of tensors that share a scale in TE (q/k/v, dQ/dK/dV) into every entry of the group
 * (mirrored on the device by native/cudnn/fp8_recipe_state.cu's te_fp8_state_record).
 */
export function recordSharedAmax(state: Fp8MetaState, amaxes: Partial<Record<Fp8TensorName, number>>): void {
  releaseFp8Meta(state);
  const names = Object.keys(amaxes) as Fp8TensorName[];
  for (const group of SHARED_SCALE_GROUPS) {
    const inGroup = names.filter((n) => group.includes(n));
    if (inGroup.length === 0) continue;
    const amax = inGroup.reduce((m, n) => Math.max(m, Math.abs(amaxes[n] ?? 0)), 0);
    for (const n of group) recordAmax(state[n], amax);
  }
  for (const n of names) {
    if (!SHARED_SCALE_GROUPS.some((g) => g.includes(n))) recordAmax(state[n], amaxes[n] ?? 0);
  }
}

/**
 * Scale updates of one pass's entries (TE updates forward and backward metas after their pass): queued
 * on the device when a backend holds the state there and can run the recipe's algo, else on the host.
 */
export function updateAttentionFp8Scales(
  state: Fp8MetaState,
  recipe: DelayedScaling,
  pass: "forward" | "backward",
): void {
  if (fp8DeviceStateOf(state)?.update(recipe, pass)) return;
  releaseFp8Meta(state);
  const names: readonly Fp8TensorName[] = pass === "forward" ? FP8_FORWARD_TENSORS : FP8_BACKWARD_TENSORS;
  for (const n of names) updateFp8Scale(state[n] as Fp8TensorMeta, recipe);
}

/**
 * The tolerance of FP8 attention against the F16 result of the same call (|x - f16| <= atol + rtol
 * |f16|, elementwise), measured with the FP8 reference emulation on the conformance cases FP8 can run
 * (docs/fp8-attention.md): HYBRID recipe, scales after one step of delayed scaling, logits of order 1.
 * Peaked softmaxes (logits >> 1) exceed it: FP8 q/k move logits by whole units there.
 */
export const FP8_ATTENTION_TOLERANCE = {
  forward: { atol: 0.06, rtol: 0.06 },
  backward: { atol: 0.2, rtol: 0.2 },
} as const;

/**
 * The backward tolerance of dK and dV when `queryHeadsPerKvHead` query heads share a K/V head (GQA/MQA):
 * each dK/dV element sums the FP8-rounded terms of every head of its group, so its error grows with the
 * group while dQ's does not. Measured with the emulation on causal d = 128 calls, inputs in [-1, 1): dv
 * needs t <= 0.14 with one head per group, 0.19 with four (the H200's cuDNN FP8 backward: 0.205) and
 * 0.30 with eight (MQA), so the bound grows as sqrt(group / 2) from the 0.2 of the plain backward.
 */
export function fp8KvGradientTolerance(queryHeadsPerKvHead: number): number {
  return FP8_ATTENTION_TOLERANCE.backward.atol * Math.sqrt(Math.max(1, queryHeadsPerKvHead / 2));
}
