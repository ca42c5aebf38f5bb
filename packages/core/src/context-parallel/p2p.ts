import { BackendError } from "../errors.js";
import type { MaskType } from "../mask.js";
import { isCausal } from "../mask.js";
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
import { fromFloat64, packArrays, placeArray, sliceTensor, unpackArrays, withRows } from "./host-blocks.js";
import {
  type AlgorithmRun,
  type ContextParallelGradients,
  type LocalProblem,
  shapeIn,
} from "./local-problem.js";
import { mergeBlockInto, newRunningOutput } from "./lse-merge.js";

/**
 * TE's AttnFuncWithCPAndKVP2P: K/V blocks travel around the ring (rank r sends to r+1), each rank
 * attends its queries to every block in turn and merges the partial results by lse. In backward the
 * K/V blocks travel again, each with the dK/dV accumulated so far for it, which arrives home after a
 * full turn; block gradients are taken against the final output and lse of the rows (the backend's
 * backwardFromStats), since no block saw a whole row.
 */

/** Which local rows of q and of the visiting k/v a ring step computes, and with which mask. */
interface RingBlock {
  readonly qStart: number;
  readonly qEnd: number;
  readonly kvStart: number;
  readonly kvEnd: number;
  readonly maskType: MaskType;
}

/**
 * The block of ring step `step` on rank `rank`, whose visiting k/v came from rank `source`. With
 * the load-balanced order (rank r holds chunks r and 2cp−1−r) a causal mask leaves three cases:
 * own k/v: both halves, causal (the diagonal); k/v of a lower rank: all queries see its first half
 * only, unmasked; k/v of a higher rank: only the second half of the queries sees it, all of it.
 */
function ringBlock(prob: LocalProblem<unknown>, rank: number, source: number): RingBlock {
  const full = { qStart: 0, qEnd: prob.sq, kvStart: 0, kvEnd: prob.skv };
  if (!isCausal(prob.p.maskType)) return { ...full, maskType: "no_mask" };
  if (source === rank) return { ...full, maskType: "causal" };
  if (source < rank) return { ...full, kvEnd: prob.skv / 2, maskType: "no_mask" };
  return { ...full, qStart: prob.sq / 2, maskType: "no_mask" };
}

function blockTensors(
  prob: LocalProblem<unknown>,
  k: HostTensor,
  v: HostTensor,
  block: RingBlock,
): BlockTensors {
  return {
    q: sliceTensor(prob.q, prob.axis, block.qStart, block.qEnd),
    k: sliceTensor(k, prob.axis, block.kvStart, block.kvEnd),
    v: sliceTensor(v, prob.axis, block.kvStart, block.kvEnd),
  };
}

function paramsOf(prob: LocalProblem<unknown>, block: RingBlock) {
  return blockParams(prob.p, prob.format, prob.backend.tensors.kind, {
    sq: block.qEnd - block.qStart,
    skv: block.kvEnd - block.kvStart,
    maskType: block.maskType,
  });
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

export async function p2pForward<T>(
  prob: LocalProblem<T>,
  backend: BackendWithStats<T> | null,
): Promise<AlgorithmRun> {
  const { p, comm, format } = prob;
  const acc = newRunningOutput(format, p.b, p.h, p.dv, prob.sq);
  let kv = new TravellingKv(prob.k, prob.v);
  for (let step = 0; step < comm.size; step++) {
    const source = (comm.rank - step + comm.size) % comm.size;
    // Start the next exchange before computing, as TE overlaps communication with the block.
    const next = step < comm.size - 1 ? kv.passOn(prob) : null;
    const block = ringBlock(prob, comm.rank, source);
    const result = await forwardBlock(
      prob.backend,
      blockTensors(prob, kv.k, kv.v, block),
      paramsOf(prob, block),
    );
    result.saved.release();
    mergeBlockInto(acc, result.o, result.lse, block.qStart, block.qEnd - block.qStart);
    if (next) kv = await next;
  }
  const o = fromFloat64(prob.dtype, shapeIn(format, p.b, prob.sq, p.h, p.dv), acc.o);
  const lse = fromFloat64(lseDtypeFor(prob.dtype), [p.b, p.h, prob.sq], acc.lse);
  return {
    o,
    lse,
    backward: async (dO) => {
      if (!backend) {
        throw new BackendError(prob.backend.id, NO_STATS_MESSAGE, "TE_CP_NO_BACKWARD_FROM_STATS");
      }
      return p2pBackward(prob, backend, o, lse, dO);
    },
    release: () => {},
  };
}

async function p2pBackward<T>(
  prob: LocalProblem<T>,
  backend: BackendWithStats<T>,
  o: HostTensor,
  lse: HostTensor,
  dO: HostTensor,
): Promise<ContextParallelGradients> {
  const { comm, axis } = prob;
  const next = (comm.rank + 1) % comm.size;
  const previous = (comm.rank - 1 + comm.size) % comm.size;
  const dq = new Float64Array(prob.q.data.length);
  let kv = new TravellingKv(prob.k, prob.v);
  // dK and dV of the visiting block, accumulated over the ranks it has visited: [dk | dv].
  let dkv = new Float64Array(prob.k.data.length + prob.v.data.length);
  for (let step = 0; step < comm.size; step++) {
    const source = (comm.rank - step + comm.size) % comm.size;
    const nextKv = step < comm.size - 1 ? kv.passOn(prob) : null;
    const block = ringBlock(prob, comm.rank, source);
    const rows = (t: HostTensor, a: number) => sliceTensor(t, a, block.qStart, block.qEnd);
    const stats = { o: rows(o, axis), lse: rows(lse, 2), dO: rows(dO, axis) };
    const g = await backwardBlockFromStats(
      backend,
      blockTensors(prob, kv.k, kv.v, block),
      stats,
      paramsOf(prob, block),
    );
    placeArray(
      dq,
      prob.q.shape,
      axis,
      block.qStart,
      g.dq,
      withRows(prob.q.shape, axis, block.qEnd - block.qStart),
      "add",
    );
    const [dk, dv] = [dkv.subarray(0, prob.k.data.length), dkv.subarray(prob.k.data.length)];
    const kvRows = block.kvEnd - block.kvStart;
    placeArray(dk, prob.k.shape, axis, block.kvStart, g.dk, withRows(prob.k.shape, axis, kvRows), "add");
    placeArray(dv, prob.v.shape, axis, block.kvStart, g.dv, withRows(prob.v.shape, axis, kvRows), "add");
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
