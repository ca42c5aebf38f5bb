import type { AttentionBackend } from "../backend.js";
import { ArgumentError } from "../errors.js";
import type { AttentionParams } from "../params.js";
import type { HostDType, HostTensor } from "../tensor.js";
import type { Communicator } from "./communicator.js";
import { contiguousCopy } from "./host-blocks.js";
import { type SequenceFormat, sequenceAxisOf } from "./load-balance.js";

/** This rank's load-balanced part of q, k and v (see splitSequenceForRank). */
export interface ContextParallelInputs {
  readonly q: HostTensor;
  readonly k: HostTensor;
  readonly v: HostTensor;
}

export interface ContextParallelGradients {
  readonly dq: HostTensor;
  readonly dk: HostTensor;
  readonly dv: HostTensor;
}

/** What one rank knows of the call: the whole call's params and its own contiguous parts. */
export interface LocalProblem<T> {
  readonly backend: AttentionBackend<T>;
  readonly comm: Communicator;
  /** The whole (unsplit) call: sq and skv are the full lengths, cpSize the group size. */
  readonly p: AttentionParams;
  readonly format: SequenceFormat;
  /** The sequence axis of q/k/v/o in `format`. */
  readonly axis: number;
  /** Local query and k/v rows (full length / cp). */
  readonly sq: number;
  readonly skv: number;
  readonly dtype: HostDType;
  readonly q: HostTensor;
  readonly k: HostTensor;
  readonly v: HostTensor;
}

/** A forward done by one algorithm on one rank, with what its backward needs. */
export interface AlgorithmRun {
  readonly o: HostTensor;
  readonly lse: HostTensor;
  backward(dO: HostTensor): Promise<ContextParallelGradients>;
  release(): void;
}

/** [b, s, heads, dim] or [s, b, heads, dim]. */
export function shapeIn(format: SequenceFormat, b: number, s: number, heads: number, dim: number): number[] {
  return format === "bshd" ? [b, s, heads, dim] : [s, b, heads, dim];
}

function checkTensor(argument: string, t: HostTensor, expected: readonly number[], dtype: HostDType): void {
  if (t.shape.length !== expected.length || t.shape.some((n, i) => n !== expected[i])) {
    throw new ArgumentError(
      `${argument}.shape`,
      `[${expected.join(", ")}] (this rank's part of the sequence)`,
      [...t.shape],
    );
  }
  if (t.dtype !== dtype) throw new ArgumentError(`${argument}.dtype`, `${dtype} (the dtype of q)`, t.dtype);
}

/** Checks this rank's tensors against the call and makes contiguous copies (never touching the caller's). */
export function describeLocalProblem<T>(
  backend: AttentionBackend<T>,
  comm: Communicator,
  inputs: ContextParallelInputs,
  p: AttentionParams,
): LocalProblem<T> {
  if (p.cpSize !== comm.size) {
    throw new ArgumentError("params.cpSize", `the communicator's size ${comm.size}`, p.cpSize);
  }
  if (p.qkvFormat === "thd") throw new ArgumentError("params.qkvFormat", "bshd or sbhd", p.qkvFormat);
  const format = p.qkvFormat;
  const cp = comm.size;
  for (const [name, length] of [
    ["params.sq", p.sq],
    ["params.skv", p.skv],
  ] as const) {
    if (length % (2 * cp) !== 0) throw new ArgumentError(name, `a multiple of 2·cp = ${2 * cp}`, length);
  }
  const sq = p.sq / cp;
  const skv = p.skv / cp;
  const dtype = inputs.q.dtype;
  checkTensor("q", inputs.q, shapeIn(format, p.b, sq, p.h, p.d), dtype);
  checkTensor("k", inputs.k, shapeIn(format, p.b, skv, p.hg, p.d), dtype);
  checkTensor("v", inputs.v, shapeIn(format, p.b, skv, p.hg, p.dv), dtype);
  return {
    backend,
    comm,
    p,
    format,
    axis: sequenceAxisOf(format),
    sq,
    skv,
    dtype,
    q: contiguousCopy(inputs.q),
    k: contiguousCopy(inputs.k),
    v: contiguousCopy(inputs.v),
  };
}
