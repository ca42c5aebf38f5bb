export {
  attentionBackward,
  attentionForward,
  type BackwardValues,
  type ForwardValues,
  type IntermediateRounding,
} from "./attention.js";
export { REFERENCE_RULES, referenceBackend, referenceBackwardFromStats } from "./backend.js";
export {
  type Fp8ReferenceForward,
  type Fp8ReferenceSaved,
  fp8ReferenceBackward,
  fp8ReferenceForward,
} from "./fp8-attention.js";
export { hostTensors } from "./host-bridge.js";
export { checkView, decodeValue, encodeValue, fromFloat64, toFloat64 } from "./host-values.js";
export { buildProblem, type Problem } from "./problem.js";
export {
  expectedShape,
  gather,
  type SequenceDims,
  type SequenceView,
  scatter,
  sequenceView,
} from "./sequence-view.js";
