import { ArgumentError } from "../errors.js";
import { contiguousStrides, type HostArray, type HostTensor, hostTensor, numel } from "../tensor.js";
import { concatArrays, contiguousCopy, sliceArray } from "./host-blocks.js";
import { gatherTokens, type Segment, thdLayout } from "./token-layout.js";

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

/**
 * thd: every sequence is cut into 2·cp chunks of its own padded length (which must be a multiple of
 * 2·cp) and rank r holds chunks r and 2·cp−1−r of each, packed at offsets cu_seqlens_padded / cp.
 * The segments map positions of each whole sequence (`from`) to positions of rank `rank`'s part (`to`).
 */
export function thdRankSegments(cuSeqlensPadded: Int32Array, cpSize: number, rank: number): Segment[] {
  const segments: Segment[] = [];
  for (let batch = 0; batch + 1 < cuSeqlensPadded.length; batch++) {
    const padded = cuSeqlensPadded[batch + 1] - cuSeqlensPadded[batch];
    const chunk = checkDivisible(`cu_seqlens_padded (sequence ${batch})`, padded, cpSize);
    chunksOfRank(rank, cpSize).forEach((c, half) => {
      segments.push({ batch, from: c * chunk, to: half * chunk, count: chunk });
    });
  }
  return segments;
}

/** The row offsets of every rank's packed part: cu_seqlens_padded / cp. */
export function thdLocalOffsets(cuSeqlensPadded: Int32Array, cpSize: number): Int32Array {
  return cuSeqlensPadded.map((x) => x / cpSize);
}

function thdLayouts(cuSeqlensPadded: Int32Array, cpSize: number) {
  return {
    whole: thdLayout(cuSeqlensPadded, 0),
    local: thdLayout(thdLocalOffsets(cuSeqlensPadded, cpSize), 0),
  };
}

/** Rank `rank`'s part of a packed [t, ...] tensor whose sequences sit at `cuSeqlensPadded`. */
export function splitThdForRank(
  t: HostTensor,
  cuSeqlensPadded: Int32Array,
  cpSize: number,
  rank: number,
): HostTensor {
  if (!Number.isInteger(rank) || rank < 0 || rank >= cpSize)
    throw new ArgumentError("rank", `a rank in [0, ${cpSize})`, rank);
  const full = contiguousCopy(t);
  const width = numel(t.shape.slice(1));
  const { whole, local } = thdLayouts(cuSeqlensPadded, cpSize);
  const shape = [local.rows, ...t.shape.slice(1)];
  const data = gatherTokens(full.data, whole, local, thdRankSegments(cuSeqlensPadded, cpSize, rank), width);
  return { dtype: t.dtype, shape, strides: contiguousStrides(shape), offset: 0, data };
}

/** The whole packed tensor from every rank's part (indexed by rank); the inverse of splitThdForRank. */
export function mergeThdFromRanks(parts: readonly HostTensor[], cuSeqlensPadded: Int32Array): HostTensor {
  const cpSize = parts.length;
  const { whole, local } = thdLayouts(cuSeqlensPadded, cpSize);
  const first = contiguousCopy(parts[0]);
  const width = numel(first.shape.slice(1));
  const shape = [whole.rows, ...first.shape.slice(1)];
  const out = hostTensor(first.dtype, shape);
  parts.forEach((part, rank) => {
    const data = contiguousCopy(part).data;
    for (const s of thdRankSegments(cuSeqlensPadded, cpSize, rank)) {
      for (let i = 0; i < s.count; i++) {
        const from = local.token(s.batch, s.to + i) * width;
        out.data.set(data.subarray(from, from + width), whole.token(s.batch, s.from + i) * width);
      }
    }
  });
  return out;
}

/** The whole lse [b, h, sq] of packed sequences from every rank's part ([b, h, sq / cp] each). */
export function mergeThdLseFromRanks(
  parts: readonly HostTensor[],
  cuSeqlensPadded: Int32Array,
  sq: number,
): HostTensor {
  const cpSize = parts.length;
  const [b, h, localLength] = parts[0].shape;
  const out = hostTensor(parts[0].dtype, [b, h, sq]);
  out.data.fill(Number.NEGATIVE_INFINITY);
  parts.forEach((part, rank) => {
    const data = contiguousCopy(part).data;
    for (const s of thdRankSegments(cuSeqlensPadded, cpSize, rank)) {
      for (let hh = 0; hh < h; hh++) {
        const from = (s.batch * h + hh) * localLength + s.to;
        out.data.set(data.subarray(from, from + s.count), (s.batch * h + hh) * sq + s.from);
      }
    }
  });
  return out;
}
