import type { SavedForBackward } from "../backend.js";
import type { AttentionParams } from "../params.js";
import type { HostTensor } from "../tensor.js";
import { backwardBlock, blockParams, forwardBlock, lseDtypeFor } from "./block-call.js";
import { concatArrays, fromFloat64, sliceArray, toFloat64, withRows } from "./host-blocks.js";
import { joinRankChunks, takeRankChunks } from "./load-balance.js";
import {
  type AlgorithmRun,
  type ContextParallelGradients,
  type SequenceProblem,
  shapeIn,
} from "./local-problem.js";

/**
 * TE's AttnFuncWithCPAndQKVOA2A (Ulysses): an all-to-all trades the sequence split for a head split,
 * so that each rank holds the whole sequence (natural order) for h/cp query heads and hg/cp k/v
 * heads, runs ordinary attention on it, and a second all-to-all trades the output back. Each row
 * sees all its keys, so the backend's own forward/backward are exact and any mask or window the
 * backend supports works.
 */

const HEAD_AXIS = 2;

/**
 * Sequence split → head split: from this rank's rows of all heads ([.., s/cp, heads, dim] in the
 * format) to all rows (natural order) of its `heads/cp` heads.
 */
async function sequenceToHeads(
  prob: SequenceProblem<unknown>,
  values: Float64Array,
  local: readonly number[],
): Promise<Float64Array> {
  const { comm, axis } = prob;
  const group = local[HEAD_AXIS] / comm.size;
  const send = Array.from({ length: comm.size }, (_, g) =>
    sliceArray(values, local, HEAD_AXIS, g * group, (g + 1) * group),
  );
  const received = await comm.allToAll(send);
  return joinRankChunks(received, withRows(local, HEAD_AXIS, group), axis);
}

/** Head split → sequence split: from all rows of this rank's heads back to this rank's rows of all heads. */
async function headsToSequence(
  prob: SequenceProblem<unknown>,
  values: Float64Array,
  shape: readonly number[],
  seqAxis: number,
  headAxis: number,
): Promise<Float64Array> {
  const { comm } = prob;
  const send = Array.from({ length: comm.size }, (_, rank) =>
    takeRankChunks(values, shape, seqAxis, comm.size, rank),
  );
  const received = await comm.allToAll(send);
  const part = withRows(shape, seqAxis, shape[seqAxis] / comm.size);
  return concatArrays(
    received.map((data) => ({ data, shape: part })),
    headAxis,
  );
}

interface HeadGroupCall {
  readonly params: AttentionParams;
  readonly saved: SavedForBackward;
  readonly oShape: readonly number[];
}

export async function allToAllForward<T>(prob: SequenceProblem<T>): Promise<AlgorithmRun> {
  const { p, comm, format, axis } = prob;
  const cp = comm.size;
  const [h, hg] = [p.h / cp, p.hg / cp];
  const whole = async (t: HostTensor) => {
    const values = await sequenceToHeads(prob, toFloat64(t), t.shape);
    const shape = withRows(withRows(t.shape, axis, t.shape[axis] * cp), HEAD_AXIS, t.shape[HEAD_AXIS] / cp);
    return fromFloat64(prob.dtype, shape, values);
  };
  const block = { q: await whole(prob.q), k: await whole(prob.k), v: await whole(prob.v) };
  const params = blockParams(p, format, prob.backend.tensors.kind, {
    sq: p.sq,
    skv: p.skv,
    maskType: p.maskType,
    h,
    hg,
  });
  const result = await forwardBlock(prob.backend, block, params);
  const call: HeadGroupCall = { params, saved: result.saved, oShape: shapeIn(format, p.b, p.sq, h, p.dv) };
  try {
    const o = await headsToSequence(prob, result.o, call.oShape, axis, HEAD_AXIS);
    const lse = await headsToSequence(prob, result.lse, [p.b, h, p.sq], 2, 1);
    return {
      o: fromFloat64(prob.dtype, shapeIn(format, p.b, prob.sq, p.h, p.dv), o),
      lse: fromFloat64(lseDtypeFor(prob.dtype), [p.b, p.h, prob.sq], lse),
      backward: (dO) => allToAllBackward(prob, call, dO),
      release: () => call.saved.release(),
    };
  } catch (error) {
    call.saved.release();
    throw error;
  }
}

async function allToAllBackward<T>(
  prob: SequenceProblem<T>,
  call: HeadGroupCall,
  dO: HostTensor,
): Promise<ContextParallelGradients> {
  const { comm, axis } = prob;
  const cp = comm.size;
  const dOWhole = await sequenceToHeads(prob, toFloat64(dO), dO.shape);
  const g = await backwardBlock(
    prob.backend,
    call.saved,
    fromFloat64(prob.dtype, call.oShape, dOWhole),
    call.params,
  );
  const back = async (values: Float64Array, like: HostTensor) => {
    const shape = withRows(
      withRows(like.shape, axis, like.shape[axis] * cp),
      HEAD_AXIS,
      like.shape[HEAD_AXIS] / cp,
    );
    return fromFloat64(prob.dtype, like.shape, await headsToSequence(prob, values, shape, axis, HEAD_AXIS));
  };
  return { dq: await back(g.dq, prob.q), dk: await back(g.dk, prob.k), dv: await back(g.dv, prob.v) };
}
