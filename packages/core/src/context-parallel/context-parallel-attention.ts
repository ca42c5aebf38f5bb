import type { AttentionBackend, SelectionContext } from "../backend.js";
import { ArgumentError, BackendError } from "../errors.js";
import type { AttentionParams } from "../params.js";
import type { HostTensor } from "../tensor.js";
import { allGatherForward } from "./all-gather.js";
import { allToAllForward } from "./all-to-all.js";
import { hasBackwardFromStats } from "./block-call.js";
import type { Communicator } from "./communicator.js";
import { type CpAlgorithm, explainContextParallel, isCpAlgorithm } from "./cp-rules.js";
import { contiguousCopy } from "./host-blocks.js";
import {
  type AlgorithmRun,
  type ContextParallelGradients,
  type ContextParallelInputs,
  describeLocalProblem,
  type LocalProblem,
} from "./local-problem.js";
import { p2pForward } from "./p2p.js";

export interface ContextParallelOptions<T> {
  /** The backend every block runs on (any AttentionBackend; blocks reach it through its TensorBridge). */
  readonly backend: AttentionBackend<T>;
  /** This rank's view of the context-parallel group; its size must equal params.cpSize. */
  readonly comm: Communicator;
  /** TE's cp_comm_type. */
  readonly algorithm: CpAlgorithm;
  /** Passed to the backend's explain for each block; defaults to no CUDA device and an empty env. */
  readonly context?: SelectionContext;
}

export interface ContextParallelResult {
  /** This rank's rows of the output, in q's format and dtype. */
  readonly o: HostTensor;
  /** This rank's rows of the lse, [b, h, s/cp] (fp32; fp64 when q is fp64). */
  readonly lse: HostTensor;
  readonly saved: ContextParallelSaved;
}

/** What contextParallelBackward needs from the forward; `release` when no backward will come. */
export interface ContextParallelSaved {
  release(): void;
}

const RUNS = new WeakMap<
  ContextParallelSaved,
  { run: AlgorithmRun; oShape: readonly number[]; released: boolean }
>();

/**
 * Attention with the sequence split over the ranks of `options.comm` (TE's context parallelism).
 * Every rank calls this with the same params — those of the whole, unsplit call (full sq and skv,
 * cpSize = group size) — and its own load-balanced part of q, k, v (splitSequenceForRank); it gets
 * its rows of the output and lse. Unsupported calls throw a BackendError (code TE_CP_UNSUPPORTED) listing
 * the "cp.*" rules and the backend's reasons.
 */
export async function contextParallelForward<T>(
  inputs: ContextParallelInputs,
  p: AttentionParams,
  options: ContextParallelOptions<T>,
): Promise<ContextParallelResult> {
  const { backend, comm, algorithm } = options;
  if (!isCpAlgorithm(algorithm)) throw new ArgumentError("algorithm", "p2p, all_gather or a2a", algorithm);
  const verdict = explainContextParallel(backend as AttentionBackend<unknown>, p, algorithm, options.context);
  if (!verdict.ok) {
    const reasons = verdict.reasons.map((r) => `${r.message} [${r.rule}]`).join("; ");
    throw new BackendError(
      backend.id,
      `cannot run context-parallel ${algorithm} attention: ${reasons}`,
      "TE_CP_UNSUPPORTED",
    );
  }
  const prob = describeLocalProblem(backend, comm, inputs, p);
  const run = await runAlgorithm(prob, algorithm);
  const saved: ContextParallelSaved = {
    release() {
      const entry = RUNS.get(saved);
      if (entry && !entry.released) {
        entry.released = true;
        entry.run.release();
      }
    },
  };
  RUNS.set(saved, { run, oShape: run.o.shape, released: false });
  return { o: run.o, lse: run.lse, saved };
}

function runAlgorithm<T>(prob: LocalProblem<T>, algorithm: CpAlgorithm): Promise<AlgorithmRun> {
  if (algorithm === "p2p") return p2pForward(prob, hasBackwardFromStats(prob.backend) ? prob.backend : null);
  // The cp rules admit thd for p2p only.
  if (prob.format === "thd")
    throw new ArgumentError("params.qkvFormat", `bshd or sbhd for ${algorithm}`, "thd");
  return algorithm === "all_gather" ? allGatherForward(prob) : allToAllForward(prob);
}

/**
 * Gradients of this rank's q, k and v given its rows of dO (in q's format and dtype); collective like
 * the forward. Consumes `saved`.
 */
export async function contextParallelBackward(
  saved: ContextParallelSaved,
  dO: HostTensor,
): Promise<ContextParallelGradients> {
  const entry = RUNS.get(saved);
  if (!entry) throw new ArgumentError("saved", "the saved state of a contextParallelForward call");
  if (entry.released)
    throw new ArgumentError(
      "saved",
      "a saved state that was neither released nor used by a backward already",
    );
  if (dO.shape.length !== entry.oShape.length || dO.shape.some((n, i) => n !== entry.oShape[i])) {
    throw new ArgumentError("dO.shape", `[${entry.oShape.join(", ")}] (the shape of this rank's output)`, [
      ...dO.shape,
    ]);
  }
  if (dO.dtype !== entry.run.o.dtype)
    throw new ArgumentError("dO.dtype", `${entry.run.o.dtype} (the output's dtype)`, dO.dtype);
  try {
    return await entry.run.backward(contiguousCopy(dO));
  } finally {
    saved.release();
  }
}
