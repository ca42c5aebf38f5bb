import { describe, expect, it } from "vitest";
import { makeParams } from "../src/params.js";
import {
  alibiBias,
  allowedKeyRange,
  defaultAlibiSlopes,
  diagonalOffset,
  entryMask,
  isAllowed,
  isBottomRightAligned,
} from "../src/semantics.js";

const params = (
  maskType: Parameters<typeof makeParams>[0]["maskType"],
  window: [number, number] = [-1, -1],
  bottomRightDiagonal = true,
) => makeParams({ b: 1, h: 1, d: 8, sq: 4, maskType, window, bottomRightDiagonal });

/** The allowed set, written out from FORMAT.md's sentences directly (no range arithmetic). */
function naiveAllowed(
  lq: number,
  lk: number,
  causal: boolean,
  off: number,
  left: number,
  right: number,
  i: number,
  j: number,
): boolean {
  if (i >= lq || j >= lk) return false;
  if (causal && j > i + off) return false;
  if (left !== -1 && j < i + off - left) return false;
  if (right !== -1 && j > i + off + right) return false;
  return true;
}

describe("diagonal alignment", () => {
  it("follows the mask type, then bottom_right_diagonal", () => {
    expect(isBottomRightAligned("causal_bottom_right", false)).toBe(true);
    expect(isBottomRightAligned("padding_causal_bottom_right", false)).toBe(true);
    expect(isBottomRightAligned("causal", true)).toBe(false);
    expect(isBottomRightAligned("padding_causal", true)).toBe(false);
    for (const m of ["no_mask", "padding", "arbitrary"] as const) {
      expect(isBottomRightAligned(m, true)).toBe(true);
      expect(isBottomRightAligned(m, false)).toBe(false);
    }
    expect(diagonalOffset("causal_bottom_right", false, 3, 10)).toBe(7);
    expect(diagonalOffset("causal", true, 3, 10)).toBe(0);
  });
});

describe("isAllowed", () => {
  it("causal top-left and bottom-right", () => {
    const tl = entryMask(params("causal"), 2, 4);
    expect([0, 1, 2, 3].map((j) => isAllowed(tl, 1, j))).toEqual([true, true, false, false]);
    const br = entryMask(params("causal_bottom_right"), 2, 4);
    expect([0, 1, 2, 3].map((j) => isAllowed(br, 0, j))).toEqual([true, true, true, false]);
    expect([0, 1, 2, 3].map((j) => isAllowed(br, 1, j))).toEqual([true, true, true, true]);
  });

  it("rows and keys past the lengths are never allowed", () => {
    const m = entryMask(params("padding"), 3, 5);
    expect(isAllowed(m, 3, 0)).toBe(false);
    expect(isAllowed(m, 0, 5)).toBe(false);
    expect(allowedKeyRange(m, 2)).toEqual([0, 5]);
  });

  it("agrees with the sentences of FORMAT.md on every mask, window and length", () => {
    const masks = [
      "no_mask",
      "padding",
      "causal",
      "padding_causal",
      "causal_bottom_right",
      "padding_causal_bottom_right",
      "arbitrary",
    ] as const;
    const windows: [number, number][] = [
      [-1, -1],
      [0, 0],
      [2, 0],
      [3, 1],
      [-1, 2],
      [1, -1],
    ];
    for (const maskType of masks) {
      for (const window of windows) {
        for (const brd of [true, false]) {
          for (const [lq, lk] of [
            [5, 5],
            [3, 7],
            [7, 3],
            [1, 6],
          ]) {
            const p = params(maskType, window, brd);
            const m = entryMask(p, lq, lk);
            const off = diagonalOffset(maskType, brd, lq, lk);
            for (let i = 0; i < 8; i++) {
              for (let j = 0; j < 8; j++) {
                const want = naiveAllowed(
                  lq,
                  lk,
                  maskType.includes("causal"),
                  off,
                  window[0],
                  window[1],
                  i,
                  j,
                );
                expect(isAllowed(m, i, j), `${maskType} ${window} ${brd} ${lq}x${lk} (${i},${j})`).toBe(want);
              }
            }
          }
        }
      }
    }
  });
});

describe("ALiBi", () => {
  it("default slopes for powers of two are 2^(-8k/n)", () => {
    expect([...defaultAlibiSlopes(4)]).toEqual([2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8]);
    expect([...defaultAlibiSlopes(1)]).toEqual([2 ** -8]);
  });

  it("default slopes for other head counts interleave 2^(-4k/m), k odd (TE's get_alibi)", () => {
    // n = 6: m = 4 gives 2^-2, 2^-4, 2^-6, 2^-8, then 2^-1, 2^-3.
    expect([...defaultAlibiSlopes(6)]).toEqual([2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8, 2 ** -1, 2 ** -3]);
    // n = 12: m = 8 gives 2^-1 .. 2^-8, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5.
    const s = defaultAlibiSlopes(12);
    expect(s[0]).toBe(2 ** -1);
    expect(s[7]).toBe(2 ** -8);
    expect(s[8]).toBeCloseTo(2 ** -0.5, 15);
    expect(s[11]).toBeCloseTo(2 ** -3.5, 15);
  });

  it("the bias is -slope times the distance to the diagonal", () => {
    const br = entryMask(params("no_mask"), 2, 5);
    expect(alibiBias(0.5, br, 0, 3)).toBe(0);
    expect(alibiBias(0.5, br, 0, 0)).toBe(-1.5);
    const tl = entryMask(params("causal"), 2, 5);
    expect(alibiBias(0.5, tl, 1, 0)).toBe(-0.5);
  });
});
