import type { AttentionBackend, Gradients, SavedForBackward } from "../backend.js";
import { type QkvFormat, qkvLayoutOf } from "../layout.js";
import type { MaskType } from "../mask.js";
import type { AttentionParams } from "../params.js";
import type { HostDType, HostTensor } from "../tensor.js";
import { toFloat64 } from "./host-blocks.js";

/**
 * One block of a context-parallel attention: some query rows against some key/value rows, run on any
 * AttentionBackend. Blocks are host tensors; they reach the backend through its TensorBridge, and
 * its results come back decoded to float64 for merging.
 */

/**
 * A backend that can compute a block's gradients from the softmax statistics of the whole row
 * (the global output and lse) instead of its own forward: what the p2p ring's backward needs, since
 * each block saw only part of every row's keys.
 */
export type BackendWithStats<T> = AttentionBackend<T> &
  Required<Pick<AttentionBackend<T>, "backwardFromStats">>;

export const NO_STATS_MESSAGE =
  "context-parallel p2p backward needs backwardFromStats (block gradients from the global output and lse), which this backend does not implement";

export function hasBackwardFromStats<T>(backend: AttentionBackend<T>): backend is BackendWithStats<T> {
  return typeof (backend as Partial<BackendWithStats<T>>).backwardFromStats === "function";
}

/** What a block changes relative to the whole call. */
export interface BlockShape {
  readonly sq: number;
  readonly skv: number;
  readonly maskType: MaskType;
  /** Query and k/v heads, when the block holds a subset of heads (all-to-all). */
  readonly h?: number;
  readonly hg?: number;
  /** thd: rows of the packed block tensors (their sequences sit at padded offsets). */
  readonly tq?: number;
  readonly tkv?: number;
}

/** The params of a block: the call's params with the block's lengths, mask and heads, on one rank. */
export function blockParams(
  p: AttentionParams,
  format: QkvFormat,
  device: string,
  shape: BlockShape,
): AttentionParams {
  return {
    ...p,
    qkvLayout: qkvLayoutOf(format, "hd_hd_hd"),
    qkvFormat: format,
    device,
    h: shape.h ?? p.h,
    hg: shape.hg ?? p.hg,
    sq: shape.sq,
    skv: shape.skv,
    tq: shape.tq ?? p.b * shape.sq,
    tkv: shape.tkv ?? p.b * shape.skv,
    maskType: shape.maskType,
    paddedThd: format === "thd",
    cpSize: 1,
  };
}

export interface BlockTensors {
  readonly q: HostTensor;
  readonly k: HostTensor;
  readonly v: HostTensor;
  /** thd: valid tokens and padded offsets of each sequence in the block tensors. */
  readonly cuSeqlensQ?: Int32Array;
  readonly cuSeqlensKv?: Int32Array;
  readonly cuSeqlensQPadded?: Int32Array;
  readonly cuSeqlensKvPadded?: Int32Array;
}

function sequenceInfoOf(block: BlockTensors) {
  const { cuSeqlensQ, cuSeqlensKv, cuSeqlensQPadded, cuSeqlensKvPadded } = block;
  return { cuSeqlensQ, cuSeqlensKv, cuSeqlensQPadded, cuSeqlensKvPadded };
}

export interface BlockForward {
  /** In the format's order, float64. */
  readonly o: Float64Array;
  /** [b, h, sq], float64. */
  readonly lse: Float64Array;
  /** The backend's state for backward; released by the caller. */
  readonly saved: SavedForBackward;
}

export interface BlockGradients {
  readonly dq: Float64Array;
  readonly dk: Float64Array;
  readonly dv: Float64Array;
}

async function upload<T>(backend: AttentionBackend<T>, tensors: readonly HostTensor[]): Promise<T[]> {
  return Promise.all(tensors.map((t) => backend.tensors.fromHost(t)));
}

async function download<T>(backend: AttentionBackend<T>, t: T): Promise<Float64Array> {
  return toFloat64(await backend.tensors.toHost(t));
}

function disposeAll<T>(backend: AttentionBackend<T>, tensors: readonly T[]): void {
  for (const t of tensors) backend.tensors.dispose(t);
}

export async function forwardBlock<T>(
  backend: AttentionBackend<T>,
  block: BlockTensors,
  p: AttentionParams,
): Promise<BlockForward> {
  const [q, k, v] = await upload(backend, [block.q, block.k, block.v]);
  const result = await backend.forward({ q, k, v, ...sequenceInfoOf(block) }, p);
  try {
    const o = await download(backend, result.o);
    const lse = await download(backend, result.lse);
    return { o, lse, saved: result.saved };
  } finally {
    disposeAll(backend, [q, k, v, result.o, result.lse]);
  }
}

async function downloadGradients<T>(backend: AttentionBackend<T>, g: Gradients<T>): Promise<BlockGradients> {
  try {
    return {
      dq: await download(backend, g.dq),
      dk: await download(backend, g.dk),
      dv: await download(backend, g.dv),
    };
  } finally {
    disposeAll(backend, [g.dq, g.dk, g.dv]);
  }
}

/** Gradients of a block whose forward state the backend kept (the block saw all of its rows' keys). */
export async function backwardBlock<T>(
  backend: AttentionBackend<T>,
  saved: SavedForBackward,
  dO: HostTensor,
  p: AttentionParams,
): Promise<BlockGradients> {
  const [dOnBackend] = await upload(backend, [dO]);
  try {
    return await downloadGradients(backend, await backend.backward(saved, dOnBackend, p));
  } finally {
    disposeAll(backend, [dOnBackend]);
  }
}

/** A block's statistics of the whole rows it belongs to. */
export interface RowStatistics {
  /** The final output of the block's query rows. */
  readonly o: HostTensor;
  /** Their final lse ([b, h, rows]). */
  readonly lse: HostTensor;
  readonly dO: HostTensor;
}

/** Gradients of a block computed with the final output and lse of its rows (see BackendWithStats). */
export async function backwardBlockFromStats<T>(
  backend: BackendWithStats<T>,
  block: BlockTensors,
  stats: RowStatistics,
  p: AttentionParams,
): Promise<BlockGradients> {
  const uploaded = await upload(backend, [block.q, block.k, block.v, stats.o, stats.lse, stats.dO]);
  const [q, k, v, o, lse, dO] = uploaded;
  try {
    return await downloadGradients(
      backend,
      await backend.backwardFromStats({ q, k, v, ...sequenceInfoOf(block) }, o, lse, dO, p),
    );
  } finally {
    disposeAll(backend, uploaded);
  }
}

/** lse is fp32 by contract; float64 inputs keep it float64 so the reference stays exact. */
export function lseDtypeFor(dtype: HostDType): HostDType {
  return dtype === "fp64" ? "fp64" : "fp32";
}
