export { type BackendWithStats, hasBackwardFromStats } from "./block-call.js";
export { type Communicator, CommunicatorError, type ReducibleArray } from "./communicator.js";
export * from "./context-parallel-attention.js";
export {
  CP_ALGORITHMS,
  CP_RULES,
  type CpAlgorithm,
  explainContextParallel,
  isCpAlgorithm,
} from "./cp-rules.js";
export { createInMemoryGroup, runEmulatedRanks } from "./in-memory-communicator.js";
export {
  chunksOfRank,
  mergeSequenceFromRanks,
  mergeThdFromRanks,
  mergeThdLseFromRanks,
  type SequenceFormat,
  sequenceAxisOf,
  splitSequenceForRank,
  splitThdForRank,
} from "./load-balance.js";
export type { ContextParallelGradients, ContextParallelInputs } from "./local-problem.js";
export { logAddExp } from "./lse-merge.js";
