import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { readControls } from "../src/env.js";
import { ArgumentError } from "../src/errors.js";
import { setLogSink } from "../src/logging.js";
import { isCausal, MASK_TYPES } from "../src/mask.js";
import { checkSetWindowSize, hasSlidingWindow, resolveBottomRightDiagonal } from "../src/window.js";

const windowBound = fc.integer({ min: -1, max: 64 });

describe("checkSetWindowSize", () => {
  it("defaults: [-1, 0] for causal masks, [-1, -1] otherwise", () => {
    for (const m of MASK_TYPES) {
      expect(checkSetWindowSize(m, undefined)).toEqual(isCausal(m) ? [-1, 0] : [-1, -1]);
      expect(checkSetWindowSize(m, null)).toEqual(isCausal(m) ? [-1, 0] : [-1, -1]);
    }
  });

  it("TE's table: causal (-1, 0) or (>=0, 0), others (-1, -1) or (>=0, >=0); fixable windows warn, others throw", () => {
    const lines: string[] = [];
    const previous = setLogSink((l) => lines.push(l));
    try {
      fc.assert(
        fc.property(fc.constantFrom(...MASK_TYPES), windowBound, windowBound, (m, left, right) => {
          lines.length = 0;
          const run = () => checkSetWindowSize(m, [left, right], readControls({}));
          let want: [number, number] | "error";
          let warns = false;
          if (isCausal(m)) {
            if (right === 0) want = [left, 0];
            else if (left >= 0 || (left === -1 && right === -1)) [want, warns] = [[left, 0], true];
            else want = "error";
          } else if (left === -1 && right === 0) [want, warns] = [[-1, -1], true];
          else if ((left === -1) !== (right === -1)) want = "error";
          else want = [left, right];
          if (want === "error") {
            expect(run).toThrow(/^window_size: expected /);
            return;
          }
          expect(run()).toEqual(want);
          expect(lines.length).toBe(warns ? 1 : 0);
          if (warns)
            expect(lines[0]).toMatch(
              /^\[WARNING \| DotProductAttention\]: window_size should be \(-1, (0|-1)\) or/,
            );
        }),
        { numRuns: 500 },
      );
    } finally {
      setLogSink(previous);
    }
  });

  it("rejects bounds below -1, non-integers and non-pairs, naming window_size", () => {
    const bad: unknown[] = [
      [-2, 0],
      [0, -3],
      [1.5, 0],
      [Number.NaN, 0],
      [0],
      [0, 0, 0],
      "4,4",
      [0, Number.POSITIVE_INFINITY],
    ];
    for (const w of bad) {
      for (const m of ["no_mask", "causal"] as const) {
        let err: unknown;
        try {
          checkSetWindowSize(m, w as number[]);
        } catch (e) {
          err = e;
        }
        expect(ArgumentError.isInstance(err), `${JSON.stringify(w)} ${m}`).toBe(true);
        expect((err as ArgumentError).argument).toBe("window_size");
      }
    }
  });

  it("hasSlidingWindow: causal's own [-1, 0] is not a window", () => {
    expect(hasSlidingWindow([-1, 0], "causal")).toBe(false);
    expect(hasSlidingWindow([4, 0], "causal")).toBe(true);
    expect(hasSlidingWindow([-1, -1], "no_mask")).toBe(false);
    expect(hasSlidingWindow([-1, 3], "padding")).toBe(true);
  });

  it("bottom_right_diagonal defaults: false for causal/padding_causal, true otherwise; explicit values kept", () => {
    for (const m of MASK_TYPES) {
      expect(resolveBottomRightDiagonal(m, undefined)).toBe(!(m === "causal" || m === "padding_causal"));
      expect(resolveBottomRightDiagonal(m, false)).toBe(false);
      expect(resolveBottomRightDiagonal(m, true)).toBe(true);
    }
  });
});
