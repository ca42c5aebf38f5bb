import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { mergeBlockInto, newRunningOutput } from "../src/context-parallel/lse-merge.js";
import { bshdLayout, sbhdLayout } from "../src/context-parallel/token-layout.js";
import {
  chunksOfRank,
  hostTensor,
  logAddExp,
  mergeSequenceFromRanks,
  mergeThdFromRanks,
  splitSequenceForRank,
  splitThdForRank,
} from "../src/index.js";

const ONE_ROW = [{ batch: 0, from: 0, to: 0, count: 1 }];

describe("load-balanced sequence split", () => {
  it("gives rank r chunks r and 2cp-1-r (TE's order)", () => {
    expect([0, 1, 2, 3].map((r) => chunksOfRank(r, 4))).toEqual([
      [0, 7],
      [1, 6],
      [2, 5],
      [3, 4],
    ]);
    // A [1, 8] tensor of positions along axis 1, cp = 2: chunks of 2 positions.
    const t = hostTensor(
      "fp32",
      [1, 8],
      Float32Array.from({ length: 8 }, (_, i) => i),
    );
    expect(Array.from(splitSequenceForRank(t, 1, 2, 0).data)).toEqual([0, 1, 6, 7]);
    expect(Array.from(splitSequenceForRank(t, 1, 2, 1).data)).toEqual([2, 3, 4, 5]);
  });

  it("split then merge is the identity for any shape, axis, cp and strides (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 3, maxLength: 3 }),
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 1, max: 2 }),
        fc.boolean(),
        (cp, dims, axis, chunk, transposed) => {
          const shape = [...dims];
          shape[axis] = 2 * cp * chunk;
          const data = Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.random());
          let t = hostTensor("fp64", shape, data);
          if (transposed) {
            // The same values seen through a transposed view of other storage: strides must be honoured.
            const swapped = [shape[1], shape[0], shape[2]];
            const storage = new Float64Array(data.length);
            for (let i = 0; i < shape[0]; i++)
              for (let j = 0; j < shape[1]; j++)
                for (let k = 0; k < shape[2]; k++)
                  storage[(j * shape[0] + i) * shape[2] + k] = data[(i * shape[1] + j) * shape[2] + k];
            t = {
              dtype: "fp64",
              shape,
              strides: [shape[2], swapped[1] * shape[2], 1],
              offset: 0,
              data: storage,
            };
          }
          const parts = Array.from({ length: cp }, (_, r) => splitSequenceForRank(t, axis, cp, r));
          for (const p of parts) expect(p.shape[axis]).toBe(shape[axis] / cp);
          const merged = mergeSequenceFromRanks(parts, axis);
          expect(merged.shape).toEqual(shape);
          expect(Array.from(merged.data)).toEqual(Array.from(data));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("thd: split then merge is the identity for packed sequences of any padded lengths (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 3 }),
        (cp, chunks, width) => {
          const offsets = Int32Array.from([
            0,
            ...chunks.map((_, i) => 2 * cp * chunks.slice(0, i + 1).reduce((a, b) => a + b, 0)),
          ]);
          const rows = offsets[chunks.length];
          const data = Float64Array.from({ length: rows * width }, () => Math.random());
          const t = hostTensor("fp64", [rows, width], data);
          const parts = Array.from({ length: cp }, (_, r) => splitThdForRank(t, offsets, cp, r));
          for (const p of parts) expect(p.shape).toEqual([rows / cp, width]);
          expect(Array.from(mergeThdFromRanks(parts, offsets).data)).toEqual(Array.from(data));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("thd: rank r holds chunks r and 2cp-1-r of every sequence", () => {
    // Two sequences of padded lengths 4 and 8, cp = 2: chunks of 1 and 2 tokens.
    const t = hostTensor(
      "fp32",
      [12, 1],
      Float32Array.from({ length: 12 }, (_, i) => i),
    );
    const offsets = Int32Array.from([0, 4, 12]);
    expect(Array.from(splitThdForRank(t, offsets, 2, 0).data)).toEqual([0, 3, 4, 5, 10, 11]);
    expect(Array.from(splitThdForRank(t, offsets, 2, 1).data)).toEqual([1, 2, 6, 7, 8, 9]);
  });

  it("rejects lengths that are not multiples of 2·cp", () => {
    const t = hostTensor("fp32", [1, 6]);
    expect(() => splitSequenceForRank(t, 1, 2, 0)).toThrow(/divisible by 2·cp = 4/);
  });
});

describe("merging partial results by lse", () => {
  it("logAddExp is exact at -Infinity and symmetric", () => {
    expect(logAddExp(Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY)).toBe(Number.NEGATIVE_INFINITY);
    expect(logAddExp(Number.NEGATIVE_INFINITY, 1.5)).toBe(1.5);
    expect(logAddExp(0, 0)).toBeCloseTo(Math.log(2), 15);
    expect(logAddExp(700, 701)).toBeCloseTo(701 + Math.log1p(Math.exp(-1)), 12);
  });

  it("merging per-block softmax averages in any grouping equals the softmax over all keys (property)", () => {
    // One row: logits s_j and values v_j (dv wide); any partition of the keys into blocks.
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -30, max: 30, noNaN: true }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 12, maxLength: 12 }),
        (logits, dv, blockOf) => {
          const values = logits.map(() => Float64Array.from({ length: dv }, () => Math.random() * 2 - 1));
          const whole = softmaxAverage(
            logits,
            values,
            dv,
            logits.map(() => true),
          );
          const acc = newRunningOutput(bshdLayout(1, 1), 1, dv);
          for (let block = 0; block < 4; block++) {
            const member = logits.map((_, j) => blockOf[j] === block);
            if (!member.some(Boolean)) continue;
            const part = softmaxAverage(logits, values, dv, member);
            mergeBlockInto(acc, part.o, new Float64Array([part.lse]), bshdLayout(1, 1), ONE_ROW);
          }
          expect(acc.lse[0]).toBeCloseTo(whole.lse, 10);
          for (let e = 0; e < dv; e++) expect(acc.o[e]).toBeCloseTo(whole.o[e], 10);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a block whose rows saw no key leaves the running output unchanged", () => {
    const acc = newRunningOutput(sbhdLayout(1, 1), 1, 2);
    mergeBlockInto(acc, new Float64Array([0.5, -1]), new Float64Array([0.25]), sbhdLayout(1, 1), ONE_ROW);
    const nothing = new Float64Array([Number.NEGATIVE_INFINITY]);
    mergeBlockInto(acc, new Float64Array([9, 9]), nothing, sbhdLayout(1, 1), ONE_ROW);
    expect(Array.from(acc.o)).toEqual([0.5, -1]);
    expect(acc.lse[0]).toBe(0.25);
  });
});

/** softmax(logits over the member keys) · values, and its log-sum-exp. */
function softmaxAverage(logits: number[], values: Float64Array[], dv: number, member: boolean[]) {
  const max = Math.max(...logits.filter((_, j) => member[j]));
  let sum = 0;
  const o = new Float64Array(dv);
  logits.forEach((s, j) => {
    if (!member[j]) return;
    const w = Math.exp(s - max);
    sum += w;
    for (let e = 0; e < dv; e++) o[e] += w * values[j][e];
  });
  for (let e = 0; e < dv; e++) o[e] /= sum;
  return { o, lse: max + Math.log(sum) };
}
