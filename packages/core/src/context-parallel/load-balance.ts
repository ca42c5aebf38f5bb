import { ArgumentError } from "../errors.js";
import { contiguousStrides, type HostArray, type HostTensor } from "../tensor.js";
import { concatArrays, contiguousCopy, sliceArray } from "./host-blocks.js";

/**
 * TE's load-balanced sequence split for context parallelism. The sequence is cut into 2·cp equal
 * chunks and rank r holds chunks r and 2·cp−1−r, in that order: with a causal mask every rank then
 * has the same amount of work (one early chunk, which sees little, and one late chunk, which sees much).
 */

/** The formats whose sequence dimension is an axis of its own. */
export type SequenceFormat = "bshd" | "sbhd";

/** Where the sequence dimension is: bshd → 1, sbhd → 0. */
export function sequenceAxisOf(format: SequenceFormat): number {
  return format === "bshd" ? 1 : 0;
}

/** The global chunk ids rank `rank` holds, in its local order. */
export function chunksOfRank(rank: number, cpSize: number): readonly [number, number] {
  return [rank, 2 * cpSize - 1 - rank];
}

function checkDivisible(argument: string, length: number, cpSize: number): number {
  if (length % (2 * cpSize) !== 0) {
    throw new ArgumentError(argument, `a sequence length divisible by 2·cp = ${2 * cpSize}`, length);
  }
  return length / (2 * cpSize);
}

/** Rank `rank`'s two chunks of a contiguous array whose `axis` holds the full sequence. */
export function takeRankChunks<A extends HostArray>(
  data: A,
  shape: readonly number[],
  axis: number,
  cpSize: number,
  rank: number,
): A {
  const chunk = checkDivisible("sequence", shape[axis], cpSize);
  const parts = chunksOfRank(rank, cpSize).map((c) => {
    const partShape = [...shape];
    partShape[axis] = chunk;
    return { data: sliceArray(data, shape, axis, c * chunk, (c + 1) * chunk), shape: partShape };
  });
  return concatArrays(parts, axis);
}

/** The full sequence (natural order) from every rank's local array, indexed by rank, each of `localShape`. */
export function joinRankChunks<A extends HostArray>(
  parts: readonly A[],
  localShape: readonly number[],
  axis: number,
): A {
  const cpSize = parts.length;
  const chunk = checkDivisible("local sequence", localShape[axis] * cpSize, cpSize);
  const chunkShape = [...localShape];
  chunkShape[axis] = chunk;
  const byChunk = new Array<{ data: A; shape: readonly number[] }>(2 * cpSize);
  parts.forEach((data, rank) => {
    chunksOfRank(rank, cpSize).forEach((c, half) => {
      byChunk[c] = {
        data: sliceArray(data, localShape, axis, half * chunk, (half + 1) * chunk),
        shape: chunkShape,
      };
    });
  });
  return concatArrays(byChunk, axis);
}

/** Rank `rank`'s local part of a full-sequence tensor (any strides in, contiguous out). */
export function splitSequenceForRank(t: HostTensor, axis: number, cpSize: number, rank: number): HostTensor {
  if (!Number.isInteger(rank) || rank < 0 || rank >= cpSize)
    throw new ArgumentError("rank", `a rank in [0, ${cpSize})`, rank);
  const full = contiguousCopy(t);
  const shape = [...t.shape];
  shape[axis] = t.shape[axis] / cpSize;
  return {
    ...full,
    shape,
    strides: contiguousStrides(shape),
    data: takeRankChunks(full.data, t.shape, axis, cpSize, rank),
  };
}

/** The full-sequence tensor from every rank's local part (indexed by rank); the inverse of splitSequenceForRank. */
export function mergeSequenceFromRanks(parts: readonly HostTensor[], axis: number): HostTensor {
  const local = parts.map(contiguousCopy);
  const shape = [...local[0].shape];
  shape[axis] *= parts.length;
  for (const [r, p] of local.entries()) {
    if (p.dtype !== local[0].dtype || p.shape.some((n, i) => n !== local[0].shape[i])) {
      throw new ArgumentError(
        `parts[${r}]`,
        `the dtype and shape of parts[0] (${local[0].dtype} [${local[0].shape}])`,
        [p.dtype, ...p.shape],
      );
    }
  }
  const data = joinRankChunks(
    local.map((p) => p.data),
    local[0].shape,
    axis,
  );
  return { dtype: local[0].dtype, shape, strides: contiguousStrides(shape), offset: 0, data };
}
