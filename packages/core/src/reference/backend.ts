import type { AttentionBackend, AttentionInputs, Gradients, SavedForBackward } from "../backend.js";
import { ArgumentError } from "../errors.js";
import type { AttentionParams } from "../params.js";
import { evaluateRules, type Rule } from "../rules.js";
import type { HostTensor } from "../tensor.js";
import { attentionBackward, attentionForward } from "./attention.js";
import { hostTensors } from "./host-bridge.js";
import { fromFloat64, toFloat64 } from "./host-values.js";
import { buildProblem, type Problem } from "./problem.js";
import { gather, scatter, sequenceView } from "./sequence-view.js";

/** What the reference cannot run: FP8 (it computes in float64 only) and split sequences. */
export const REFERENCE_RULES: readonly Rule[] = [
  { id: "reference.fp8", rejects: (p) => p.fp8 !== null, message: "does not support FP8 attention" },
  {
    id: "reference.context_parallel",
    rejects: (p) => p.cpSize > 1,
    message: "does not run context parallelism itself (the context-parallel driver calls backwardFromStats)",
  },
];

/** Rows of a thd tensor (other formats: unused). */
const rowsOf = (t: HostTensor): number => t.shape[0];

/** Rounds canonical output values into a contiguous tensor in q's format and dtype. */
function outputOf(
  pr: Problem,
  values: Float64Array,
  x: number,
  like: HostTensor,
  dtype: HostTensor["dtype"],
): HostTensor {
  return scatter(values, pr.p.qkvFormat, pr.qDims(x), rowsOf(like), dtype);
}

/** The lse of a forward as an fp32 [b, h, sq] tensor (-inf where a row has no normaliser). */
function lseTensor(p: AttentionParams, lse: Float64Array): HostTensor {
  return fromFloat64("fp32", [p.b, p.h, p.sq], lse);
}

interface ReferenceSaved extends SavedForBackward {
  readonly inputs: AttentionInputs<HostTensor>;
  readonly o: HostTensor;
  readonly lse: HostTensor;
}

/**
 * Backward from given statistics: o (in q's format, head dim dv) and lse (fp32 or fp64 [b, h, sq]).
 * Context parallelism calls it with the global o and lse and a chunk of k/v to get that chunk's
 * gradients. dSoftmaxOffset is computed from every given row, so a caller splitting keys must take it
 * from one chunk only.
 */
export async function referenceBackwardFromStats(
  inputs: AttentionInputs<HostTensor>,
  o: HostTensor,
  lse: HostTensor,
  dO: HostTensor,
  p: AttentionParams,
): Promise<Gradients<HostTensor>> {
  const pr = buildProblem(inputs, p);
  const oDims = pr.qDims(p.dv);
  const oValues = gather(o, sequenceView("o", o, p.qkvFormat, oDims), oDims);
  const dOValues = gather(dO, sequenceView("dO", dO, p.qkvFormat, oDims), oDims);
  if (lse.shape.length !== 3 || lse.shape[0] !== p.b || lse.shape[1] !== p.h || lse.shape[2] !== p.sq) {
    throw new ArgumentError("lse.shape", `[${p.b}, ${p.h}, ${p.sq}]`, `[${lse.shape}]`);
  }
  const g = attentionBackward(pr, oValues, toFloat64(lse), dOValues);
  const fmt = p.qkvFormat;
  return {
    dq: scatter(g.dq, fmt, pr.qDims(p.d), rowsOf(inputs.q), inputs.q.dtype),
    dk: scatter(g.dk, fmt, pr.kvDims(p.d), rowsOf(inputs.k), inputs.k.dtype),
    dv: scatter(g.dv, fmt, pr.kvDims(p.dv), rowsOf(inputs.v), inputs.v.dtype),
    dbias: g.dbias && inputs.bias ? fromFloat64(inputs.bias.dtype, inputs.bias.shape, g.dbias) : undefined,
    dSoftmaxOffset:
      g.dOffset && inputs.softmaxOffset
        ? fromFloat64(inputs.softmaxOffset.dtype, [p.h], g.dOffset)
        : undefined,
  };
}

/** The reference backend: float64 math on host tensors, every feature, last in selection order. */
export const referenceBackend: AttentionBackend<HostTensor> & {
  backwardFromStats: typeof referenceBackwardFromStats;
} = {
  specificationVersion: "v1",
  id: "reference",
  family: "UnfusedDotProductAttention",
  tensors: hostTensors,
  dtypes: ["fp32", "fp16", "bf16"],
  rank: () => 100,
  explain: (p) => evaluateRules(REFERENCE_RULES, p, undefined),

  async forward(inputs, p) {
    const pr = buildProblem(inputs, p);
    const { o, lse } = attentionForward(pr);
    // Backward reads the unrounded float64 output, so gradients do not inherit the output's rounding.
    const saved: ReferenceSaved = {
      inputs,
      o: outputOf(pr, o, p.dv, inputs.q, "fp64"),
      lse: fromFloat64("fp64", [p.b, p.h, p.sq], lse),
      release: () => {},
    };
    return { o: outputOf(pr, o, p.dv, inputs.q, inputs.q.dtype), lse: lseTensor(p, lse), saved };
  },

  async backward(saved, dO, p) {
    const s = saved as ReferenceSaved;
    if (s.inputs === undefined || s.o === undefined) {
      throw new ArgumentError("saved", "the saved state of a reference forward", saved);
    }
    return referenceBackwardFromStats(s.inputs, s.o, s.lse, dO, p);
  },

  backwardFromStats: referenceBackwardFromStats,
};
