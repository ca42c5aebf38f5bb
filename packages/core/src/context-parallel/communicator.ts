import { ArgumentError, TeError } from "../errors.js";
import type { HostArray } from "../tensor.js";

/** Buffers a reduction can add up: the float arrays host tensors use for fp32/fp64 values. */
export type ReducibleArray = Float64Array | Float32Array;

/**
 * A context-parallel process group as the attention algorithms see it: `size` ranks exchanging host
 * buffers. Every method is collective over the ranks named in its contract and resolves when this
 * rank's part is done; received buffers are fresh (never aliases of another rank's memory), and the
 * buffers passed in are only read.
 *
 * Calls must be made in the same order on every rank (as NCCL and torch.distributed require): the
 * k-th collective call of one rank meets the k-th collective call of every other rank.
 */
export interface Communicator {
  readonly rank: number;
  readonly size: number;
  /**
   * Sends `send` to rank `to` and receives a buffer of the same type and length from rank `from`
   * (the ring step of TE's flash_attn_p2p_communicate; `to`/`from` are usually rank ± 1).
   */
  sendRecv<A extends HostArray>(send: A, to: number, from: number): Promise<A>;
  /** Every rank's `send` (all of one type and length), indexed by rank. */
  allGather<A extends HostArray>(send: A): Promise<A[]>;
  /**
   * `send[s]` goes to rank s; the result's entry s is what rank s sent to this rank. Entries may
   * differ in length; the entry a rank sends to itself is copied too.
   */
  allToAll<A extends HostArray>(send: readonly A[]): Promise<A[]>;
  /** The element-wise sum of every rank's `send`. */
  allReduce<A extends ReducibleArray>(send: A): Promise<A>;
  /**
   * `send[s]` holds this rank's contribution to rank s's slice; the result is the element-wise sum
   * over ranks of what they sent for this rank (TE's reduce_scatter_along_first_dim).
   */
  reduceScatter<A extends ReducibleArray>(send: readonly A[]): Promise<A>;
}

/** A new, empty array of the same type as `like`. */
export function arrayLike<A extends HostArray>(like: A, length: number): A {
  const Ctor = like.constructor as new (n: number) => A;
  return new Ctor(length);
}

/** A copy of `a` (same type), so that no two ranks ever share memory. */
export function copyArray<A extends HostArray>(a: A): A {
  return a.slice() as A;
}

/** A collective could not complete: ranks disagreed on the call, or a rank failed or was aborted. */
export class CommunicatorError extends TeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("TE_COMMUNICATOR", message, options);
    this.name = "CommunicatorError";
  }
}

/** Checks that `peer` names a rank of a group of `size`. */
export function checkPeer(argument: string, peer: number, size: number): void {
  if (!Number.isInteger(peer) || peer < 0 || peer >= size) {
    throw new ArgumentError(argument, `a rank in [0, ${size})`, peer);
  }
}
