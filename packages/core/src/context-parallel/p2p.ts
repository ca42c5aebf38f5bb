import { BackendError } from "../errors.js";
import { isCausal, type MaskType } from "../mask.js";
import type { AttentionParams } from "../params.js";
import { type HostTensor, hostTensor } from "../tensor.js";
import {
  type BackendWithStats,
  type BlockTensors,
  backwardBlockFromStats,
  blockParams,
  forwardBlock,
  lseDtypeFor,
  NO_STATS_MESSAGE,
} from "./block-call.js";
import { fromFloat64, packArrays, unpackArrays } from "./host-blocks.js";
import { chunksOfRank } from "./load-balance.js";
import type {
  AlgorithmRun,
  ContextParallelGradients,
  LocalProblem,
  PackedSequences,
} from "./local-problem.js";
import { mergeBlockInto, newRunningOutput } from "./lse-merge.js";
import {
  bshdLayout,
  gatherLse,
  gatherTokens,
  type Segment,
  sbhdLayout,
  scatterAddTokens,
  type TokenLayout,
  thdLayout,
} from "./token-layout.js";

/**
 * TE's AttnFuncWithCPAndKVP2P: K/V blocks travel around the ring (rank r sends to r+1), each rank
 * attends its queries to every block in turn and merges the partial results by lse. In backward the
 * K/V blocks travel again, each with the dK/dV accumulated so far for it, which arrives home after a
 * full turn; block gradients are taken against the final output and lse of the rows (the backend's
 * backwardFromStats), since no block saw a whole row. Works for bshd, sbhd and thd (each packed
 * sequence split on its own, padding between sequences allowed).
 */

/** Which local rows of one side a block takes: all of them, or the first or second chunk of each sequence. */
type Part = "all" | "first" | "second";

/** One side (q or k/v) of a block: its tensors' layout and where its rows come from. */
interface BlockSide {
  readonly layout: TokenLayout;
  /** Local position (`from`) → block position (`to`), per sequence. */
  readonly segments: readonly Segment[];
  /** thd: cumulative valid tokens and padded offsets of the block's sequences. */
  readonly cuSeqlens?: Int32Array;
  readonly cuSeqlensPadded?: Int32Array;
}

/**
 * The block of ring step `step` on rank `rank`, whose visiting k/v came from rank `source`. With
 * the load-balanced order (rank r holds chunks r and 2cp−1−r) a causal mask leaves three cases:
 * own k/v: both chunks, causal (the diagonal); k/v of a lower rank: all queries see its first chunk
 * only, unmasked; k/v of a higher rank: only the second chunk of the queries sees it, all of it.
 */
function ringParts(p: AttentionParams, rank: number, source: number): { q: Part; kv: Part; causal: boolean } {
  if (!isCausal(p.maskType)) return { q: "all", kv: "all", causal: false };
  if (source === rank) return { q: "all", kv: "all", causal: true };
  if (source < rank) return { q: "all", kv: "first", causal: false };
  return { q: "second", kv: "all", causal: false };
}

const cumulative = (counts: ArrayLike<number>): Int32Array => {
  const out = new Int32Array(counts.length + 1);
  for (let i = 0; i < counts.length; i++) out[i + 1] = out[i] + counts[i];
  return out;
};

/** Valid tokens of chunk `chunk` of a sequence of `length` valid tokens cut in chunks of `size`. */
const validIn = (length: number, chunk: number, size: number): number =>
  Math.min(Math.max(length - chunk * size, 0), size);

/** The local layout of one side of this rank's tensors (k/v: the same for every rank's part). */
function localLayout(prob: LocalProblem<unknown>, side: "q" | "kv"): TokenLayout {
  const length = side === "q" ? prob.sq : prob.skv;
  if (prob.format === "thd")
    return thdLayout((side === "q" ? prob.packedQ : prob.packedKv).localOffsets, length);
  return prob.format === "bshd" ? bshdLayout(prob.p.b, length) : sbhdLayout(prob.p.b, length);
}

function blockSide(prob: LocalProblem<unknown>, side: "q" | "kv", part: Part, owner: number): BlockSide {
  const { b } = prob.p;
  const length = side === "q" ? prob.sq : prob.skv;
  const size = part === "all" ? length : length / 2;
  if (prob.format !== "thd") {
    const from = part === "second" ? length / 2 : 0;
    const segments = Array.from({ length: b }, (_, batch) => ({ batch, from, to: 0, count: size }));
    return { layout: prob.format === "bshd" ? bshdLayout(b, size) : sbhdLayout(b, size), segments };
  }
  const packed: PackedSequences = side === "q" ? prob.packedQ : prob.packedKv;
  const [early, late] = chunksOfRank(owner, prob.comm.size);
  const counts = new Int32Array(b);
  const valid = new Int32Array(b);
  const segments: Segment[] = [];
  for (let batch = 0; batch < b; batch++) {
    const chunk = packed.chunks[batch];
    const length = packed.lengths[batch];
    counts[batch] = part === "all" ? 2 * chunk : chunk;
    valid[batch] =
      (part !== "second" ? validIn(length, early, chunk) : 0) +
      (part !== "first" ? validIn(length, late, chunk) : 0);
    segments.push({ batch, from: part === "second" ? chunk : 0, to: 0, count: counts[batch] });
  }
  const offsets = cumulative(counts);
  return {
    layout: thdLayout(offsets, size),
    segments,
    cuSeqlens: cumulative(valid),
    cuSeqlensPadded: offsets,
  };
}

/** The inverse mapping of a side's segments: block position → local position. */
const backwards = (segments: readonly Segment[]): Segment[] =>
  segments.map((s) => ({ batch: s.batch, from: s.to, to: s.from, count: s.count }));

function blockTensorShape(
  prob: LocalProblem<unknown>,
  layout: TokenLayout,
  heads: number,
  dim: number,
): number[] {
  if (prob.format === "thd") return [layout.rows, heads, dim];
  const s = layout.length;
  return prob.format === "bshd" ? [prob.p.b, s, heads, dim] : [s, prob.p.b, heads, dim];
}

/** Rows of a local tensor (laid out as `from`) gathered into a block tensor of one side. */
function gatherSide(
  prob: LocalProblem<unknown>,
  t: HostTensor,
  from: TokenLayout,
  side: BlockSide,
): HostTensor {
  const [heads, dim] = t.shape.slice(-2);
  const data = gatherTokens(t.data, from, side.layout, side.segments, heads * dim);
  return hostTensor(t.dtype, blockTensorShape(prob, side.layout, heads, dim), data);
}

interface RingBlock {
  readonly q: BlockSide;
  readonly kv: BlockSide;
  readonly params: AttentionParams;
  tensors(k: HostTensor, v: HostTensor): BlockTensors;
}

function ringBlock(prob: LocalProblem<unknown>, source: number): RingBlock {
  const { p, comm } = prob;
  const parts = ringParts(p, comm.rank, source);
  const q = blockSide(prob, "q", parts.q, comm.rank);
  const kv = blockSide(prob, "kv", parts.kv, source);
  const thd = prob.format === "thd";
  const maskType: MaskType = thd
    ? parts.causal
      ? "padding_causal"
      : "padding"
    : parts.causal
      ? "causal"
      : "no_mask";
  const params = blockParams(p, prob.format, prob.backend.tensors.kind, {
    sq: q.layout.length,
    skv: kv.layout.length,
    maskType,
    tq: q.layout.rows,
    tkv: kv.layout.rows,
  });
  const [qLocal, kvLocal] = [localLayout(prob, "q"), localLayout(prob, "kv")];
  return {
    q,
    kv,
    params,
    tensors: (k, v) => ({
      q: gatherSide(prob, prob.q, qLocal, q),
      k: gatherSide(prob, k, kvLocal, kv),
      v: gatherSide(prob, v, kvLocal, kv),
      ...(thd
        ? {
            cuSeqlensQ: q.cuSeqlens,
            cuSeqlensKv: kv.cuSeqlens,
            cuSeqlensQPadded: q.cuSeqlensPadded,
            cuSeqlensKvPadded: kv.cuSeqlensPadded,
          }
        : {}),
    }),
  };
}

/** The k/v this rank holds at a step, as one message: k's elements then v's. */
class TravellingKv {
  constructor(
    readonly k: HostTensor,
    readonly v: HostTensor,
  ) {}

  async passOn(prob: LocalProblem<unknown>): Promise<TravellingKv> {
    const { comm } = prob;
    const packed = packArrays([this.k.data, this.v.data]);
    const received = await comm.sendRecv(
      packed,
      (comm.rank + 1) % comm.size,
      (comm.rank - 1 + comm.size) % comm.size,
    );
    const [k, v] = unpackArrays(received, [this.k.data.length, this.v.data.length]);
    return new TravellingKv(
      hostTensor(this.k.dtype, this.k.shape, k),
      hostTensor(this.v.dtype, this.v.shape, v),
    );
  }
}

/**
 * An exchange started before a block is computed: if the block throws, nobody awaits the exchange,
 * so its failure (the group being aborted) must not surface as an unhandled rejection.
 */
function inFlight<X>(exchange: Promise<X>): Promise<X> {
  exchange.catch(() => undefined);
  return exchange;
}

export async function p2pForward<T>(
  prob: LocalProblem<T>,
  backend: BackendWithStats<T> | null,
): Promise<AlgorithmRun> {
  const { p, comm } = prob;
  const qLocal = localLayout(prob, "q");
  const acc = newRunningOutput(qLocal, p.h, p.dv);
  let kv = new TravellingKv(prob.k, prob.v);
  for (let step = 0; step < comm.size; step++) {
    const source = (comm.rank - step + comm.size) % comm.size;
    // Start the next exchange before computing, as TE overlaps communication with the block.
    const next = step < comm.size - 1 ? inFlight(kv.passOn(prob)) : null;
    const block = ringBlock(prob, source);
    const result = await forwardBlock(prob.backend, block.tensors(kv.k, kv.v), block.params);
    result.saved.release();
    mergeBlockInto(acc, result.o, result.lse, block.q.layout, backwards(block.q.segments));
    if (next) kv = await next;
  }
  const o = fromFloat64(prob.dtype, [...prob.q.shape.slice(0, -1), p.dv], acc.o);
  const lse = fromFloat64(lseDtypeFor(prob.dtype), [p.b, p.h, prob.sq], acc.lse);
  return {
    o,
    lse,
    backward: async (dO) => {
      if (!backend) throw new BackendError(prob.backend.id, NO_STATS_MESSAGE, "TE_CP_NO_BACKWARD_FROM_STATS");
      return p2pBackward(prob, backend, o, acc.lse, dO);
    },
    release: () => {},
  };
}

async function p2pBackward<T>(
  prob: LocalProblem<T>,
  backend: BackendWithStats<T>,
  o: HostTensor,
  lse: Float64Array,
  dO: HostTensor,
): Promise<ContextParallelGradients> {
  const { comm, p } = prob;
  const next = (comm.rank + 1) % comm.size;
  const previous = (comm.rank - 1 + comm.size) % comm.size;
  const [qLocal, kvLocal] = [localLayout(prob, "q"), localLayout(prob, "kv")];
  const dq = new Float64Array(prob.q.data.length);
  let kv = new TravellingKv(prob.k, prob.v);
  // dK and dV of the visiting block, accumulated over the ranks it has visited: [dk | dv].
  let dkv = new Float64Array(prob.k.data.length + prob.v.data.length);
  for (let step = 0; step < comm.size; step++) {
    const source = (comm.rank - step + comm.size) % comm.size;
    const nextKv = step < comm.size - 1 ? inFlight(kv.passOn(prob)) : null;
    const block = ringBlock(prob, source);
    const stats = {
      o: gatherSide(prob, o, qLocal, block.q),
      lse: fromFloat64(
        lseDtypeFor(prob.dtype),
        [p.b, p.h, block.q.layout.length],
        gatherLse(lse, qLocal, block.q.layout, block.q.segments, p.h),
      ),
      dO: gatherSide(prob, dO, qLocal, block.q),
    };
    const g = await backwardBlockFromStats(backend, block.tensors(kv.k, kv.v), stats, block.params);
    scatterAddTokens(dq, qLocal, g.dq, block.q.layout, backwards(block.q.segments), p.h * p.d);
    const [dk, dv] = [dkv.subarray(0, prob.k.data.length), dkv.subarray(prob.k.data.length)];
    const kvBack = backwards(block.kv.segments);
    scatterAddTokens(dk, kvLocal, g.dk, block.kv.layout, kvBack, p.hg * p.d);
    scatterAddTokens(dv, kvLocal, g.dv, block.kv.layout, kvBack, p.hg * p.dv);
    // The accumulator follows its k/v block; after the last step it has come back to its owner.
    dkv = await comm.sendRecv(dkv, next, previous);
    if (nextKv) kv = await nextKv;
  }
  const [dk, dv] = unpackArrays(dkv, [prob.k.data.length, prob.v.data.length]);
  return {
    dq: fromFloat64(prob.dtype, prob.q.shape, dq),
    dk: fromFloat64(prob.dtype, prob.k.shape, dk),
    dv: fromFloat64(prob.dtype, prob.v.shape, dv),
  };
}
