import type { AttentionBackend } from "../backend.js";
import { ArgumentError } from "../errors.js";
import { isCausal } from "../mask.js";
import type { AttentionParams } from "../params.js";
import type { HostDType, HostTensor } from "../tensor.js";
import type { Communicator } from "./communicator.js";
import { contiguousCopy } from "./host-blocks.js";
import { type SequenceFormat, sequenceAxisOf, thdLocalOffsets } from "./load-balance.js";

/**
 * This rank's load-balanced part of q, k and v (splitSequenceForRank / splitThdForRank). For thd,
 * the cu_seqlens describe the WHOLE sequences (as TE takes them): cuSeqlens the valid lengths,
 * cuSeqlensPadded the offsets of the padded sequences, each padded length a multiple of 2·cp
 * (absent: equal to cuSeqlens, so the lengths themselves must be multiples of 2·cp).
 */
export interface ContextParallelInputs {
  readonly q: HostTensor;
  readonly k: HostTensor;
  readonly v: HostTensor;
  readonly cuSeqlensQ?: Int32Array;
  readonly cuSeqlensKv?: Int32Array;
  readonly cuSeqlensQPadded?: Int32Array;
  readonly cuSeqlensKvPadded?: Int32Array;
}

export interface ContextParallelGradients {
  readonly dq: HostTensor;
  readonly dk: HostTensor;
  readonly dv: HostTensor;
}

/** Packed (thd) sequences of one side (q or k/v) of the whole call. */
export interface PackedSequences {
  /** Valid length of each whole sequence. */
  readonly lengths: Int32Array;
  /** Offsets of the padded whole sequences ([b + 1]). */
  readonly padded: Int32Array;
  /** Offsets of each rank's part of them: padded / cp. */
  readonly localOffsets: Int32Array;
  /** Chunk length of each sequence: padded length / (2·cp). */
  readonly chunks: Int32Array;
}

interface CommonProblem<T> {
  readonly backend: AttentionBackend<T>;
  readonly comm: Communicator;
  /** The whole (unsplit) call: sq and skv are the full lengths, cpSize the group size. */
  readonly p: AttentionParams;
  /** Local lse positions of q and k/v: the whole lengths / cp. */
  readonly sq: number;
  readonly skv: number;
  readonly dtype: HostDType;
  readonly q: HostTensor;
  readonly k: HostTensor;
  readonly v: HostTensor;
}

/** bshd/sbhd: every sequence has the same length, split into equal chunks. */
export interface SequenceProblem<T> extends CommonProblem<T> {
  readonly format: SequenceFormat;
  /** The sequence axis of q/k/v/o. */
  readonly axis: number;
}

export interface PackedProblem<T> extends CommonProblem<T> {
  readonly format: "thd";
  readonly packedQ: PackedSequences;
  readonly packedKv: PackedSequences;
}

/** What one rank knows of the call: the whole call's params and its own contiguous parts. */
export type LocalProblem<T> = SequenceProblem<T> | PackedProblem<T>;

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

function packedSequences(
  name: string,
  cuSeqlens: Int32Array | undefined,
  cuSeqlensPadded: Int32Array | undefined,
  b: number,
  maxLength: number,
  cp: number,
): PackedSequences {
  if (!(cuSeqlens instanceof Int32Array) || cuSeqlens.length !== b + 1 || cuSeqlens[0] !== 0) {
    throw new ArgumentError(
      `cuSeqlens${name}`,
      `Int32Array of b + 1 = ${b + 1} cumulative lengths of the whole sequences`,
      cuSeqlens,
    );
  }
  const padded = cuSeqlensPadded ?? cuSeqlens;
  if (!(padded instanceof Int32Array) || padded.length !== b + 1 || padded[0] !== 0) {
    throw new ArgumentError(`cuSeqlens${name}Padded`, `Int32Array of b + 1 = ${b + 1} offsets`, padded);
  }
  const lengths = new Int32Array(b);
  const chunks = new Int32Array(b);
  for (let i = 0; i < b; i++) {
    lengths[i] = cuSeqlens[i + 1] - cuSeqlens[i];
    const span = padded[i + 1] - padded[i];
    if (span % (2 * cp) !== 0 || span > maxLength || lengths[i] < 0 || lengths[i] > span) {
      throw new ArgumentError(
        `cuSeqlens${name}${cuSeqlensPadded ? "Padded" : ""}`,
        `padded sequence lengths that are multiples of 2·cp = ${2 * cp}, at most max_seqlen ${maxLength}, each holding its sequence`,
        [...padded],
      );
    }
    chunks[i] = span / (2 * cp);
  }
  return { lengths, padded, localOffsets: thdLocalOffsets(padded, cp), chunks };
}

/** Checks this rank's tensors against the call and makes contiguous copies (never touching the caller's). */
export function describeLocalProblem<T>(
  backend: AttentionBackend<T>,
  comm: Communicator,
  inputs: ContextParallelInputs,
  p: AttentionParams,
): LocalProblem<T> {
  const cp = comm.size;
  if (p.cpSize !== cp) throw new ArgumentError("params.cpSize", `the communicator's size ${cp}`, p.cpSize);
  for (const [name, length] of [
    ["params.sq", p.sq],
    ["params.skv", p.skv],
  ] as const) {
    if (length % (2 * cp) !== 0) throw new ArgumentError(name, `a multiple of 2·cp = ${2 * cp}`, length);
  }
  const dtype = inputs.q.dtype;
  const common = {
    backend,
    comm,
    p,
    sq: p.sq / cp,
    skv: p.skv / cp,
    dtype,
    q: contiguousCopy(inputs.q),
    k: contiguousCopy(inputs.k),
    v: contiguousCopy(inputs.v),
  };
  if (p.qkvFormat === "thd") {
    const packedQ = packedSequences("Q", inputs.cuSeqlensQ, inputs.cuSeqlensQPadded, p.b, p.sq, cp);
    const packedKv = packedSequences("Kv", inputs.cuSeqlensKv, inputs.cuSeqlensKvPadded, p.b, p.skv, cp);
    const same = (a: Int32Array, b: Int32Array) => a.every((x, i) => x === b[i]);
    if (
      isCausal(p.maskType) &&
      !(same(packedQ.lengths, packedKv.lengths) && same(packedQ.padded, packedKv.padded))
    ) {
      throw new ArgumentError(
        "cuSeqlensKv",
        "the q sequences' lengths and offsets (a causal mask pairs each query with its own sequence's keys)",
        [...(inputs.cuSeqlensKv ?? [])],
      );
    }
    const [tq, tkv] = [packedQ.localOffsets[p.b], packedKv.localOffsets[p.b]];
    checkTensor("q", inputs.q, [tq, p.h, p.d], dtype);
    checkTensor("k", inputs.k, [tkv, p.hg, p.d], dtype);
    checkTensor("v", inputs.v, [tkv, p.hg, p.dv], dtype);
    return { ...common, format: "thd", packedQ, packedKv };
  }
  const format = p.qkvFormat;
  checkTensor("q", inputs.q, shapeIn(format, p.b, common.sq, p.h, p.d), dtype);
  checkTensor("k", inputs.k, shapeIn(format, p.b, common.skv, p.hg, p.d), dtype);
  checkTensor("v", inputs.v, shapeIn(format, p.b, common.skv, p.hg, p.dv), dtype);
  return { ...common, format, axis: sequenceAxisOf(format) };
}
