import type { SavedForBackward } from "../backend.js";
import { isCausal } from "../mask.js";
import type { AttentionParams } from "../params.js";
import { type HostTensor, hostTensor } from "../tensor.js";
import { backwardBlock, blockParams, forwardBlock, lseDtypeFor } from "./block-call.js";
import { fromFloat64, packArrays, placeArray, sliceTensor, unpackArrays, withRows } from "./host-blocks.js";
import { chunksOfRank, joinRankChunks, takeRankChunks } from "./load-balance.js";
import type { AlgorithmRun, ContextParallelGradients, SequenceProblem } from "./local-problem.js";

/**
 * TE's AttnFuncWithCPAndKVAllGather: every rank gathers the whole K/V (back in natural order), then
 * attends each of its two query chunks to the keys up to that chunk's end with a bottom-right causal
 * mask (no mask: all queries to all keys in one call). Every query row sees all of its keys in one
 * call, so the backend's own forward/backward are exact; dK/dV of the whole sequence are summed
 * over ranks and scattered back to their owners (reduce-scatter).
 */

/** One call: local query rows [qStart, qEnd) against the first `kvEnd` rows of the whole k/v. */
interface GatheredCall {
  readonly qStart: number;
  readonly qEnd: number;
  readonly kvEnd: number;
  readonly params: AttentionParams;
  readonly saved: SavedForBackward;
}

function callsOf(
  prob: SequenceProblem<unknown>,
): { qStart: number; qEnd: number; kvEnd: number; causal: boolean }[] {
  const { comm, sq } = prob;
  const fullKv = prob.skv * comm.size;
  if (!isCausal(prob.p.maskType)) return [{ qStart: 0, qEnd: sq, kvEnd: fullKv, causal: false }];
  const chunk = sq / 2;
  return chunksOfRank(comm.rank, comm.size).map((globalChunk, half) => ({
    qStart: half * chunk,
    qEnd: (half + 1) * chunk,
    kvEnd: (globalChunk + 1) * (prob.skv / 2),
    causal: true,
  }));
}

async function gatherWholeKv(prob: SequenceProblem<unknown>): Promise<{ k: HostTensor; v: HostTensor }> {
  const { k, v, axis } = prob;
  const parts = await prob.comm.allGather(packArrays([k.data, v.data]));
  const split = parts.map((packed) => unpackArrays(packed, [k.data.length, v.data.length]));
  const whole = (t: HostTensor, i: number) => {
    const shape = withRows(t.shape, axis, t.shape[axis] * prob.comm.size);
    return hostTensor(
      t.dtype,
      shape,
      joinRankChunks(
        split.map((s) => s[i]),
        t.shape,
        axis,
      ),
    );
  };
  return { k: whole(k, 0), v: whole(v, 1) };
}

export async function allGatherForward<T>(prob: SequenceProblem<T>): Promise<AlgorithmRun> {
  const { p, axis, format } = prob;
  const whole = await gatherWholeKv(prob);
  const o = new Float64Array(p.b * prob.sq * p.h * p.dv);
  const oShape = [...prob.q.shape.slice(0, 3), p.dv];
  const lse = new Float64Array(p.b * p.h * prob.sq);
  const calls: GatheredCall[] = [];
  try {
    for (const c of callsOf(prob)) {
      const params = blockParams(p, format, prob.backend.tensors.kind, {
        sq: c.qEnd - c.qStart,
        skv: c.kvEnd,
        maskType: c.causal ? "causal_bottom_right" : "no_mask",
      });
      const block = {
        q: sliceTensor(prob.q, axis, c.qStart, c.qEnd),
        k: sliceTensor(whole.k, axis, 0, c.kvEnd),
        v: sliceTensor(whole.v, axis, 0, c.kvEnd),
      };
      const result = await forwardBlock(prob.backend, block, params);
      calls.push({ ...c, params, saved: result.saved });
      placeArray(o, oShape, axis, c.qStart, result.o, withRows(oShape, axis, c.qEnd - c.qStart), "set");
      placeArray(lse, [p.b, p.h, prob.sq], 2, c.qStart, result.lse, [p.b, p.h, c.qEnd - c.qStart], "set");
    }
  } catch (error) {
    for (const c of calls) c.saved.release();
    throw error;
  }
  return {
    o: fromFloat64(prob.dtype, oShape, o),
    lse: fromFloat64(lseDtypeFor(prob.dtype), [p.b, p.h, prob.sq], lse),
    backward: (dO) => allGatherBackward(prob, calls, dO),
    release: () => {
      for (const c of calls) c.saved.release();
    },
  };
}

async function allGatherBackward<T>(
  prob: SequenceProblem<T>,
  calls: readonly GatheredCall[],
  dO: HostTensor,
): Promise<ContextParallelGradients> {
  const { axis, comm } = prob;
  const wholeShape = (t: HostTensor) => withRows(t.shape, axis, t.shape[axis] * comm.size);
  const dq = new Float64Array(prob.q.data.length);
  const dk = new Float64Array(prob.k.data.length * comm.size);
  const dv = new Float64Array(prob.v.data.length * comm.size);
  for (const c of calls) {
    const g = await backwardBlock(prob.backend, c.saved, sliceTensor(dO, axis, c.qStart, c.qEnd), c.params);
    placeArray(
      dq,
      prob.q.shape,
      axis,
      c.qStart,
      g.dq,
      withRows(prob.q.shape, axis, c.qEnd - c.qStart),
      "set",
    );
    placeArray(dk, wholeShape(prob.k), axis, 0, g.dk, withRows(prob.k.shape, axis, c.kvEnd), "add");
    placeArray(dv, wholeShape(prob.v), axis, 0, g.dv, withRows(prob.v.shape, axis, c.kvEnd), "add");
  }
  // Each rank receives the sum over ranks of the gradient of its own two chunks.
  const send = Array.from({ length: comm.size }, (_, rank) =>
    packArrays([
      takeRankChunks(dk, wholeShape(prob.k), axis, comm.size, rank),
      takeRankChunks(dv, wholeShape(prob.v), axis, comm.size, rank),
    ]),
  );
  const [myDk, myDv] = unpackArrays(await comm.reduceScatter(send), [prob.k.data.length, prob.v.data.length]);
  return {
    dq: fromFloat64(prob.dtype, prob.q.shape, dq),
    dk: fromFloat64(prob.dtype, prob.k.shape, myDk),
    dv: fromFloat64(prob.dtype, prob.v.shape, myDv),
  };
}
