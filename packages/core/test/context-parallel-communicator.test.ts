import { describe, expect, it } from "vitest";
import { CommunicatorError, createInMemoryGroup, runEmulatedRanks } from "../src/index.js";

describe("in-memory communicator (emulated ranks)", () => {
  it("sendRecv around a ring delivers each rank's buffer to the next, as a copy", async () => {
    const size = 4;
    const sent = Array.from({ length: size }, (_, r) =>
      Float64Array.from({ length: 5 }, () => r + Math.random()),
    );
    const got = await runEmulatedRanks(size, (comm) =>
      comm.sendRecv(sent[comm.rank], (comm.rank + 1) % size, (comm.rank - 1 + size) % size),
    );
    got.forEach((g, r) => {
      expect(Array.from(g)).toEqual(Array.from(sent[(r - 1 + size) % size]));
      expect(g).not.toBe(sent[(r - 1 + size) % size]);
    });
  });

  it("keeps per-pair order over several exchanges", async () => {
    const got = await runEmulatedRanks(2, async (comm) => {
      const other = 1 - comm.rank;
      const a = await comm.sendRecv(single(comm.rank * 10 + 1), other, other);
      const b = await comm.sendRecv(single(comm.rank * 10 + 2), other, other);
      return [a[0], b[0]];
    });
    expect(got).toEqual([
      [11, 12],
      [1, 2],
    ]);
  });

  it("allGather, allToAll, allReduce and reduceScatter compute what they say", async () => {
    const size = 3;
    const results = await runEmulatedRanks(size, async (comm) => {
      const r = comm.rank;
      const gathered = await comm.allGather(new Float32Array([r, r + 0.5]));
      const exchanged = await comm.allToAll(
        Array.from({ length: size }, (_, to) => new Float64Array(to + 1).fill(10 * r + to)),
      );
      const reduced = await comm.allReduce(new Float64Array([r, 2 * r, 1]));
      const scattered = await comm.reduceScatter(
        Array.from({ length: size }, (_, to) => new Float64Array([100 * to + r, 1])),
      );
      return { gathered, exchanged, reduced, scattered };
    });
    results.forEach((x, r) => {
      expect(x.gathered.map((a) => Array.from(a))).toEqual([0, 1, 2].map((s) => [s, s + 0.5]));
      expect(x.exchanged.map((a) => Array.from(a))).toEqual(
        [0, 1, 2].map((s) => new Array(r + 1).fill(10 * s + r)),
      );
      expect(Array.from(x.reduced)).toEqual([3, 6, 3]);
      expect(Array.from(x.scattered)).toEqual([300 * r + 3, 3]);
    });
  });

  it("ranks calling different collectives fail with a CommunicatorError instead of hanging", async () => {
    const run = runEmulatedRanks(2, async (comm) => {
      if (comm.rank === 0) return comm.allReduce(new Float64Array(1));
      return (await comm.allGather(new Float64Array(1)))[0];
    });
    await expect(run).rejects.toSatisfy(
      (e: unknown) => e instanceof CommunicatorError && /allGather|allReduce/.test(String(e)),
    );
  });

  it("a failing rank aborts the others' pending calls", async () => {
    const run = runEmulatedRanks(3, async (comm) => {
      if (comm.rank === 2) throw new Error("rank 2 broke");
      return comm.allReduce(new Float64Array(1));
    });
    await expect(run).rejects.toThrow("rank 2 broke");
  });

  it("mismatched buffer sizes and bad peers are reported", async () => {
    await expect(
      runEmulatedRanks(2, (comm) => comm.allReduce(new Float64Array(comm.rank + 1))),
    ).rejects.toBeInstanceOf(CommunicatorError);
    const [comm] = createInMemoryGroup(2);
    await expect(comm.sendRecv(new Float64Array(1), 2, 0)).rejects.toThrow(/sendRecv to/);
  });
});

function single(x: number): Float32Array {
  return new Float32Array([x]);
}
