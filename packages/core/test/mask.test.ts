import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { alibiBiasTensor } from "../src/alibi-bias.js";
import { getFullMask, maskToPostScaleBias } from "../src/full-mask.js";
import { isCausal, MASK_TYPES } from "../src/mask.js";
import { makeParams } from "../src/params.js";
import { alibiBias, defaultAlibiSlopes, entryMask, isAllowed } from "../src/semantics.js";

const call = fc
  .record({
    b: fc.integer({ min: 1, max: 3 }),
    sq: fc.integer({ min: 1, max: 9 }),
    skv: fc.integer({ min: 1, max: 9 }),
    maskType: fc.constantFrom(...MASK_TYPES.filter((m) => m !== "arbitrary")),
    left: fc.integer({ min: -1, max: 6 }),
    right: fc.integer({ min: -1, max: 6 }),
    bottomRightDiagonal: fc.boolean(),
    seed: fc.nat(),
  })
  .map((r) => {
    // Any window the semantics define (one-sided too); causal masks keep right = 0.
    const window: [number, number] = [r.left, isCausal(r.maskType) ? 0 : r.right];
    const p = makeParams({
      b: r.b,
      h: 2,
      d: 4,
      sq: r.sq,
      skv: r.skv,
      maskType: r.maskType,
      window,
      bottomRightDiagonal: r.bottomRightDiagonal,
    });
    const lensQ = Array.from({ length: r.b }, (_, i) => (r.seed >> i) % (r.sq + 1));
    const lensKv = Array.from({ length: r.b }, (_, i) => (r.seed >> (i + 7)) % (r.skv + 1));
    return { p, lensQ, lensKv };
  });

/** FORMAT.md's rules written out directly: lengths, aligned diagonal, causal, window. */
function allowedFromTheSentences(
  p: ReturnType<typeof makeParams>,
  lq: number,
  lk: number,
  i: number,
  j: number,
): boolean {
  const bottomRight =
    p.maskType.endsWith("bottom_right") || (!p.maskType.includes("causal") && p.bottomRightDiagonal);
  const diagonal = i + (bottomRight ? lk - lq : 0);
  if (i >= lq || j >= lk) return false;
  if (p.maskType.includes("causal") && j > diagonal) return false;
  if (p.window[0] !== -1 && j < diagonal - p.window[0]) return false;
  if (p.window[1] !== -1 && j > diagonal + p.window[1]) return false;
  return true;
}

describe("getFullMask", () => {
  it("is 1 exactly where isAllowed says no, for every mask type, window and lengths", () => {
    fc.assert(
      fc.property(call, ({ p, lensQ, lensKv }) => {
        const m = getFullMask(p, { seqlensQ: lensQ, seqlensKv: lensKv });
        expect(m.shape).toEqual([p.b, 1, p.sq, p.skv]);
        for (let bi = 0; bi < p.b; bi++) {
          const g = entryMask(p, lensQ[bi], lensKv[bi]);
          for (let i = 0; i < p.sq; i++) {
            for (let j = 0; j < p.skv; j++) {
              const masked = m.data[(bi * p.sq + i) * p.skv + j];
              expect(masked).toBe(isAllowed(g, i, j) ? 0 : 1);
              expect(masked).toBe(allowedFromTheSentences(p, lensQ[bi], lensKv[bi], i, j) ? 0 : 1);
            }
          }
        }
      }),
    );
  });

  it("an arbitrary mask with h heads adds its 1s on top and gives h mask rows", () => {
    const p = makeParams({ b: 2, h: 3, d: 4, sq: 3, skv: 5, maskType: "arbitrary" });
    const data = Uint8Array.from({ length: 2 * 3 * 15 }, () => (Math.random() < 0.4 ? 1 : 0));
    const snapshot = data.slice();
    const m = getFullMask(p, { attnMask: { shape: [2, 3, 3, 5], data }, seqlensKv: [5, 4] });
    expect(m.shape).toEqual([2, 3, 3, 5]);
    for (let e = 0; e < data.length; e++) {
      const j = e % 5;
      const bi = Math.floor(e / 45);
      expect(m.data[e]).toBe(data[e] === 1 || (bi === 1 && j === 4) ? 1 : 0);
    }
    expect(data).toEqual(snapshot);
    expect(() => getFullMask(p)).toThrow(/attention_mask/);
  });

  it("maskToPostScaleBias is -inf where masked, 0 elsewhere", () => {
    const data = Uint8Array.from([0, 1, 1, 0]);
    const bias = maskToPostScaleBias({ shape: [1, 1, 2, 2], data });
    expect([...bias.data]).toEqual([0, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY, 0]);
  });
});

describe("alibiBiasTensor", () => {
  it("matches semantics.alibiBias with default and custom slopes", () => {
    fc.assert(
      fc.property(call, fc.boolean(), ({ p, lensQ, lensKv }, perBatch) => {
        const slopes = perBatch ? Float64Array.from({ length: p.b * p.h }, () => Math.random()) : undefined;
        const t = alibiBiasTensor(p, { slopes, seqlensQ: lensQ, seqlensKv: lensKv });
        const sameLengths = lensQ.every((l, i) => l === lensQ[0] && lensKv[i] === lensKv[0]);
        const bb = perBatch || !sameLengths ? p.b : 1;
        expect(t.shape).toEqual([bb, p.h, p.sq, p.skv]);
        const defaults = defaultAlibiSlopes(p.h);
        for (let bi = 0; bi < bb; bi++) {
          const g = entryMask(p, lensQ[bi], lensKv[bi]);
          for (let hi = 0; hi < p.h; hi++) {
            const slope = slopes ? slopes[bi * p.h + hi] : defaults[hi];
            for (let i = 0; i < p.sq; i++) {
              for (let j = 0; j < p.skv; j++) {
                expect(t.data[((bi * p.h + hi) * p.sq + i) * p.skv + j]).toBe(alibiBias(slope, g, i, j));
              }
            }
          }
        }
      }),
      { numRuns: 50 },
    );
  });

  it("rejects slopes of the wrong size, naming alibi_slopes", () => {
    const p = makeParams({ b: 2, h: 4, d: 4, sq: 3 });
    expect(() => alibiBiasTensor(p, { slopes: new Float64Array(3) })).toThrow(
      /^alibi_slopes: expected 4 slopes/,
    );
  });
});
