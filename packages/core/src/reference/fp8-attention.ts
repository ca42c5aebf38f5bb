import type { AttentionInputs, Gradients } from "../backend.js";
import { ArgumentError } from "../errors.js";
import { amaxOf, dequantizeFp8, type Fp8MetaState, type Fp8TensorMeta, quantizeFp8 } from "../fp8.js";
import { kernelScaleOfS, recordSharedAmax } from "../fp8-attention.js";
import { releaseFp8Meta } from "../fp8-residency.js";
import type { AttentionParams } from "../params.js";
import type { HostTensor } from "../tensor.js";
import { attentionBackward, attentionForward, type IntermediateRounding } from "./attention.js";
import { referenceBackwardFromStats } from "./backend.js";
import { decodeValue, encodeValue, fromFloat64, toFloat64 } from "./host-values.js";
import { buildProblem, type Problem } from "./problem.js";
import { gather, scatter, sequenceView } from "./sequence-view.js";

/**
 * A float64 emulation of FP8 attention (cuDNN's sub-backend 2 under TE's recipe, see
 * fp8-attention.ts): the math is float64 on FP8-quantised q, k, v, with the softmax output P
 * quantised with the S scale before P.V, O written in FP8 with the O scale; backward on FP8 dO and
 * O, with P quantised again for dV and dS (times the softmax scale, as cuDNN) quantised with the dP
 * scale before dS.K and dS.Q, and dQ/dK/dV written in FP8. Amaxes are recorded into the state as the kernel reports them; scale
 * updates are the caller's (updateAttentionFp8Scales). A GPU FP8 result is checked against it.
 */

const isFp8Tensor = (t: HostTensor): boolean => t.dtype === "fp8e4m3" || t.dtype === "fp8e5m2";

/** The value x rounds to in an FP8 dtype at a scale: fp8(x * scale) / scale. */
function roundedAt(meta: Fp8TensorMeta, scale = meta.scale): (x: number) => number {
  return (x) => decodeValue(meta.dtype, encodeValue(meta.dtype, x * scale)) / scale;
}

/** Probabilities round at the kernel's S scale (kernelScaleOfS: the recipe's, capped at the format's max). */
const roundedProbability = (meta: Fp8TensorMeta) => roundedAt(meta, kernelScaleOfS(meta));

/** An input tensor in FP8: quantised with the meta's scale (fp8_dpa) or checked as given (fp8_mha). */
function asFp8(name: string, t: HostTensor, meta: Fp8TensorMeta): HostTensor {
  if (isFp8Tensor(t)) {
    if (t.dtype !== meta.dtype) throw new ArgumentError(`${name}.dtype`, meta.dtype, t.dtype);
    return t;
  }
  return quantizeFp8(t, meta.dtype, meta.scale);
}

const dequantized = (t: HostTensor, meta: Fp8TensorMeta): HostTensor =>
  dequantizeFp8(t, meta.scaleInv, "fp64");

function fp8ModeOf(p: AttentionParams) {
  if (p.fp8 === null || !(p.fp8.dpa || p.fp8.mha))
    throw new ArgumentError("params.fp8", "an FP8 mode with dpa or mha", p.fp8);
  return p.fp8;
}

/** What the FP8 forward keeps for backward. */
export interface Fp8ReferenceSaved {
  readonly inputs: AttentionInputs<HostTensor>;
  /** q, k, v in FP8, as the kernel read them. */
  readonly qkv8: readonly [HostTensor, HostTensor, HostTensor];
  /** O in FP8 (q's format, head dim dv). */
  readonly o8: HostTensor;
  readonly lse: HostTensor;
  /** The F16 dtype of the edges (fp8_dpa: the inputs' dtype; fp8_mha: bf16). */
  readonly edgeDType: "fp32" | "fp16" | "bf16";
}

export interface Fp8ReferenceForward {
  /** fp8_dpa: O dequantised into the inputs' dtype; fp8_mha: O in FP8 (its scale is state.o). */
  readonly o: HostTensor;
  readonly lse: HostTensor;
  readonly saved: Fp8ReferenceSaved;
}

const rowsOf = (t: HostTensor): number => t.shape[0];

export function fp8ReferenceForward(
  inputs: AttentionInputs<HostTensor>,
  p: AttentionParams,
  state: Fp8MetaState,
): Fp8ReferenceForward {
  releaseFp8Meta(state); // the host emulation reads and records the current values
  const mode = fp8ModeOf(p);
  const q8 = asFp8("q", inputs.q, state.q);
  const k8 = asFp8("k", inputs.k, state.k);
  const v8 = asFp8("v", inputs.v, state.v);
  // fp8_mha inputs were cast (and their amax recorded) by the layer before.
  if (!isFp8Tensor(inputs.q)) {
    recordSharedAmax(state, { q: amaxOf(inputs.q), k: amaxOf(inputs.k), v: amaxOf(inputs.v) });
  }
  const pr = buildProblem(
    { ...inputs, q: dequantized(q8, state.q), k: dequantized(k8, state.k), v: dequantized(v8, state.v) },
    p,
  );
  let amaxS = 0;
  const roundS = roundedProbability(state.s);
  const { o, lse } = attentionForward(pr, {
    probability: (x) => {
      amaxS = Math.max(amaxS, x);
      return roundS(x);
    },
  });
  recordSharedAmax(state, { s: amaxS });
  const o8 = quantizeFp8(
    scatter(o, p.qkvFormat, pr.qDims(p.dv), rowsOf(inputs.q), "fp64"),
    state.o.dtype,
    state.o.scale,
    state.o,
  );
  const edgeDType = isFp8Tensor(inputs.q) ? "bf16" : (inputs.q.dtype as "fp32" | "fp16" | "bf16");
  const lseTensor = fromFloat64("fp32", [p.b, p.h, p.sq], lse);
  const out = mode.mha ? o8 : fromFloat64(edgeDType, o8.shape, toFloat64(dequantized(o8, state.o)));
  return { o: out, lse: lseTensor, saved: { inputs, qkv8: [q8, k8, v8], o8, lse: lseTensor, edgeDType } };
}

function problemOf(saved: Fp8ReferenceSaved, p: AttentionParams, state: Fp8MetaState): Problem {
  const [q8, k8, v8] = saved.qkv8;
  return buildProblem(
    {
      ...saved.inputs,
      q: dequantized(q8, state.q),
      k: dequantized(k8, state.k),
      v: dequantized(v8, state.v),
    },
    p,
  );
}

/**
 * Backward of an FP8 forward. With p.fp8.backward (NVTE_FP8_DPA_BWD=1) it runs in FP8 as described
 * above; otherwise in float64 on the F16 tensors TE's F16 backward would see: fp8_dpa's F16 inputs
 * (fp8_mha's dequantised ones) and the dequantised O. Gradients come back in the edge dtype (fp8_dpa)
 * or in FP8 with the dQ/dK/dV scales (fp8_mha with an FP8 backward).
 */
export async function fp8ReferenceBackward(
  saved: Fp8ReferenceSaved,
  dO: HostTensor,
  p: AttentionParams,
  state: Fp8MetaState,
): Promise<Gradients<HostTensor>> {
  releaseFp8Meta(state);
  const mode = fp8ModeOf(p);
  const oValues = dequantized(saved.o8, state.o);
  if (!mode.backward) {
    const f16 = (t: HostTensor, meta: Fp8TensorMeta) =>
      isFp8Tensor(t) ? fromFloat64(saved.edgeDType, t.shape, toFloat64(dequantized(t, meta))) : t;
    const { inputs } = saved;
    const edgeInputs = {
      ...inputs,
      q: f16(inputs.q, state.q),
      k: f16(inputs.k, state.k),
      v: f16(inputs.v, state.v),
    };
    const dOF16 = isFp8Tensor(dO)
      ? fromFloat64(saved.edgeDType, dO.shape, toFloat64(dequantized(dO, state.dO)))
      : dO;
    const o = fromFloat64(saved.edgeDType, oValues.shape, toFloat64(oValues));
    return referenceBackwardFromStats(edgeInputs, o, saved.lse, dOF16, { ...p, fp8: null });
  }
  const dO8 = asFp8("dO", dO, state.dO);
  if (!isFp8Tensor(dO)) recordSharedAmax(state, { dO: amaxOf(dO) });
  const pr = problemOf(saved, p, state);
  const oDims = pr.qDims(p.dv);
  const dOValues = dequantized(dO8, state.dO);
  let amaxDP = 0;
  const roundDP = roundedAt(state.dP);
  const rounding: IntermediateRounding = {
    probability: roundedProbability(state.s),
    // cuDNN quantises dS after the softmax scale (its amax dP is of dS * scale): rounded there too.
    scoreGradient: (x) => {
      const scaled = x * p.softmaxScale;
      amaxDP = Math.max(amaxDP, Math.abs(scaled));
      return roundDP(scaled) / p.softmaxScale;
    },
  };
  const g = attentionBackward(
    pr,
    gather(oValues, sequenceView("o", oValues, p.qkvFormat, oDims), oDims),
    toFloat64(saved.lse),
    gather(dOValues, sequenceView("dO", dOValues, p.qkvFormat, oDims), oDims),
    rounding,
  );
  recordSharedAmax(state, { dP: amaxDP });
  const fmt = p.qkvFormat;
  const { inputs } = saved;
  const grads = {
    dq: scatter(g.dq, fmt, pr.qDims(p.d), rowsOf(inputs.q), "fp64"),
    dk: scatter(g.dk, fmt, pr.kvDims(p.d), rowsOf(inputs.k), "fp64"),
    dv: scatter(g.dv, fmt, pr.kvDims(p.dv), rowsOf(inputs.v), "fp64"),
  };
  recordSharedAmax(state, { dQ: amaxOf(grads.dq), dK: amaxOf(grads.dk), dV: amaxOf(grads.dv) });
  const out = (t: HostTensor, meta: Fp8TensorMeta): HostTensor => {
    const t8 = quantizeFp8(t, meta.dtype, meta.scale);
    return mode.mha ? t8 : fromFloat64(saved.edgeDType, t8.shape, toFloat64(dequantized(t8, meta)));
  };
  return { dq: out(grads.dq, state.dQ), dk: out(grads.dk, state.dK), dv: out(grads.dv, state.dV) };
}
