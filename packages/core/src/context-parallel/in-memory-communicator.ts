import { ArgumentError } from "../errors.js";
import type { HostArray } from "../tensor.js";
import {
  arrayLike,
  type Communicator,
  CommunicatorError,
  checkPeer,
  copyArray,
  type ReducibleArray,
} from "./communicator.js";

/**
 * Emulated ranks in one process: `size` Communicators whose collectives meet in shared memory. Used to
 * run and test the context-parallel algorithms without GPUs; every buffer crossing ranks is copied, so
 * a rank can only see another's data through the calls, as with NCCL.
 */

interface Pending<R> {
  resolve(value: R): void;
  reject(error: unknown): void;
}

/** One collective call: what each rank brought, and who waits for the result. */
interface Round {
  readonly op: string;
  readonly payloads: Map<number, unknown>;
  readonly waiters: Map<number, Pending<unknown>>;
}

type Combine = (payloads: readonly unknown[], rank: number) => unknown;

class Hub {
  private readonly rounds = new Map<number, Round>();
  private readonly messages = new Map<string, HostArray[]>();
  private readonly receivers = new Map<string, Pending<HostArray>[]>();
  private failure: CommunicatorError | null = null;

  constructor(readonly size: number) {}

  collective(rank: number, seq: number, op: string, payload: unknown, combine: Combine): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    let round = this.rounds.get(seq);
    if (!round) {
      round = { op, payloads: new Map(), waiters: new Map() };
      this.rounds.set(seq, round);
    }
    if (round.op !== op) {
      const error = new CommunicatorError(
        `collective #${seq}: rank ${rank} called ${op} while another rank called ${round.op}; every rank must make the same calls in the same order`,
      );
      this.abort(error);
      return Promise.reject(error);
    }
    const result = new Promise<unknown>((resolve, reject) => round.waiters.set(rank, { resolve, reject }));
    round.payloads.set(rank, payload);
    if (round.payloads.size === this.size) {
      this.rounds.delete(seq);
      const ordered = Array.from({ length: this.size }, (_, r) => round.payloads.get(r));
      for (const [r, waiter] of round.waiters) {
        try {
          waiter.resolve(combine(ordered, r));
        } catch (error) {
          waiter.reject(error);
        }
      }
    }
    return result;
  }

  send(from: number, to: number, data: HostArray): void {
    if (this.failure) throw this.failure;
    const key = `${from}->${to}`;
    const waiting = this.receivers.get(key);
    if (waiting && waiting.length > 0) waiting.shift()!.resolve(data);
    else this.queue(this.messages, key).push(data);
  }

  receive(from: number, to: number): Promise<HostArray> {
    if (this.failure) return Promise.reject(this.failure);
    const key = `${from}->${to}`;
    const queued = this.messages.get(key);
    if (queued && queued.length > 0) return Promise.resolve(queued.shift()!);
    return new Promise((resolve, reject) => this.queue(this.receivers, key).push({ resolve, reject }));
  }

  /** Fails every pending and future call, so that one failing rank cannot leave the others waiting forever. */
  abort(error: CommunicatorError): void {
    if (this.failure) return;
    this.failure = error;
    for (const round of this.rounds.values()) for (const w of round.waiters.values()) w.reject(error);
    for (const list of this.receivers.values()) for (const w of list) w.reject(error);
    this.rounds.clear();
    this.receivers.clear();
    this.messages.clear();
  }

  private queue<V>(map: Map<string, V[]>, key: string): V[] {
    let list = map.get(key);
    if (!list) {
      list = [];
      map.set(key, list);
    }
    return list;
  }
}

function sameShape(op: string, arrays: readonly HostArray[]): void {
  const first = arrays[0];
  for (const [r, a] of arrays.entries()) {
    if (a.constructor !== first.constructor || a.length !== first.length) {
      throw new CommunicatorError(
        `${op}: rank ${r} sent ${a.constructor.name}(${a.length}), rank 0 sent ${first.constructor.name}(${first.length})`,
      );
    }
  }
}

function sum<A extends ReducibleArray>(op: string, parts: readonly A[]): A {
  sameShape(op, parts);
  const out = arrayLike(parts[0], parts[0].length);
  for (const p of parts) for (let i = 0; i < out.length; i++) out[i] += p[i];
  return out;
}

class InMemoryCommunicator implements Communicator {
  private collectives = 0;

  constructor(
    private readonly hub: Hub,
    readonly rank: number,
  ) {}

  get size(): number {
    return this.hub.size;
  }

  async sendRecv<A extends HostArray>(send: A, to: number, from: number): Promise<A> {
    checkPeer("sendRecv to", to, this.size);
    checkPeer("sendRecv from", from, this.size);
    this.hub.send(this.rank, to, copyArray(send));
    const received = await this.hub.receive(from, this.rank);
    if (received.constructor !== send.constructor || received.length !== send.length) {
      throw new CommunicatorError(
        `sendRecv: rank ${this.rank} expected ${send.constructor.name}(${send.length}) from rank ${from}, got ${received.constructor.name}(${received.length})`,
      );
    }
    return received as A;
  }

  allGather<A extends HostArray>(send: A): Promise<A[]> {
    return this.collective("allGather", copyArray(send), (parts) => {
      sameShape("allGather", parts as A[]);
      return (parts as A[]).map(copyArray);
    });
  }

  allToAll<A extends HostArray>(send: readonly A[]): Promise<A[]> {
    if (send.length !== this.size)
      throw new ArgumentError("allToAll send", `${this.size} buffers (one per rank)`, send.length);
    return this.collective("allToAll", send.map(copyArray), (parts, rank) =>
      (parts as A[][]).map((fromRank) => copyArray(fromRank[rank])),
    );
  }

  allReduce<A extends ReducibleArray>(send: A): Promise<A> {
    return this.collective("allReduce", copyArray(send), (parts) => sum("allReduce", parts as A[]));
  }

  reduceScatter<A extends ReducibleArray>(send: readonly A[]): Promise<A> {
    if (send.length !== this.size) {
      throw new ArgumentError("reduceScatter send", `${this.size} buffers (one per rank)`, send.length);
    }
    return this.collective("reduceScatter", send.map(copyArray), (parts, rank) =>
      sum(
        "reduceScatter",
        (parts as A[][]).map((fromRank) => fromRank[rank]),
      ),
    );
  }

  private collective<R>(op: string, payload: unknown, combine: Combine): Promise<R> {
    return this.hub.collective(this.rank, this.collectives++, op, payload, combine) as Promise<R>;
  }
}

function newGroup(size: number): { hub: Hub; comms: InMemoryCommunicator[] } {
  if (!Number.isInteger(size) || size < 1) throw new ArgumentError("size", "a positive integer", size);
  const hub = new Hub(size);
  return { hub, comms: Array.from({ length: size }, (_, rank) => new InMemoryCommunicator(hub, rank)) };
}

/** `size` communicators, one per emulated rank, connected to each other. */
export function createInMemoryGroup(size: number): Communicator[] {
  return newGroup(size).comms;
}

/**
 * Runs `body` once per emulated rank, concurrently, and returns the results in rank order. If one
 * rank fails, the group is aborted so that the others fail too instead of waiting forever, and the
 * first failure is thrown.
 */
export async function runEmulatedRanks<R>(
  size: number,
  body: (comm: Communicator) => Promise<R>,
): Promise<R[]> {
  const { hub, comms } = newGroup(size);
  const settled = await Promise.allSettled(
    comms.map((comm) =>
      body(comm).catch((error: unknown) => {
        hub.abort(new CommunicatorError(`rank ${comm.rank} failed: ${String(error)}`, { cause: error }));
        throw error;
      }),
    ),
  );
  const failed = settled.find((s) => s.status === "rejected" && !(s.reason instanceof CommunicatorError));
  const firstFailure = failed ?? settled.find((s) => s.status === "rejected");
  if (firstFailure && firstFailure.status === "rejected") throw firstFailure.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<R>).value);
}
