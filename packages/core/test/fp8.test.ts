import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FP8_E4M3, fp8Value } from "../src/codec.js";
import { ArgumentError } from "../src/errors.js";
import {
  amaxOf,
  createFp8Meta,
  delayedScaling,
  dequantizeFp8,
  fp8DTypeOf,
  quantizeFp8,
  recordAmax,
  updateFp8Meta,
  updateFp8Scale,
} from "../src/fp8.js";
import { hostTensor } from "../src/tensor.js";

describe("DelayedScaling", () => {
  it("has TE's defaults and checks its fields by TE's names", () => {
    const r = delayedScaling();
    expect(r).toMatchObject({
      margin: 0,
      fp8Format: "HYBRID",
      amaxHistoryLen: 1024,
      amaxComputeAlgo: "max",
      fp8Dpa: false,
      fp8Mha: false,
      reduceAmax: true,
    });
    const bad: [Parameters<typeof delayedScaling>[0], string][] = [
      [{ margin: -1 }, "recipe.margin"],
      [{ fp8Format: "E3M4" as never }, "recipe.fp8_format"],
      [{ amaxHistoryLen: 0 }, "recipe.amax_history_len"],
      [{ amaxComputeAlgo: "mean" as never }, "recipe.amax_compute_algo"],
    ];
    for (const [opts, arg] of bad) {
      let err: unknown;
      try {
        delayedScaling(opts);
      } catch (e) {
        err = e;
      }
      expect(ArgumentError.isInstance(err) && (err as ArgumentError).argument).toBe(arg);
    }
  });

  it("HYBRID casts forward tensors to E4M3 and gradients to E5M2", () => {
    expect(fp8DTypeOf("HYBRID", "q")).toBe("fp8e4m3");
    expect(fp8DTypeOf("HYBRID", "s")).toBe("fp8e4m3");
    expect(fp8DTypeOf("HYBRID", "dO")).toBe("fp8e5m2");
    expect(fp8DTypeOf("HYBRID", "dV")).toBe("fp8e5m2");
    expect(fp8DTypeOf("E4M3", "dQ")).toBe("fp8e4m3");
    expect(fp8DTypeOf("E5M2", "k")).toBe("fp8e5m2");
    const meta = createFp8Meta(delayedScaling({ amaxHistoryLen: 4 }));
    expect(Object.keys(meta).sort()).toEqual(["dK", "dO", "dP", "dQ", "dV", "k", "o", "q", "s", "v"]);
  });

  it("scale = (fp8_max / amax) / 2^margin over the history's max; keeps the old scale for 0/NaN/inf", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1e-3, max: 1e4, noNaN: true }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 0, max: 4 }),
        fc.constantFrom("max" as const, "most_recent" as const),
        (amaxes, margin, algo) => {
          const recipe = delayedScaling({ amaxHistoryLen: 3, margin, amaxComputeAlgo: algo });
          const meta = createFp8Meta(recipe).q;
          const seen: number[] = [];
          for (const a of amaxes) {
            recordAmax(meta, a);
            seen.unshift(a);
            const window = seen.slice(0, 3);
            const amax = algo === "max" ? Math.max(...window) : window[0];
            updateFp8Scale(meta, recipe);
            expect(meta.scale).toBeCloseTo(448 / amax / 2 ** margin, 10);
            expect(meta.scaleInv).toBeCloseTo(1 / meta.scale, 12);
            expect(meta.amaxHistory[0]).toBe(0);
          }
        },
      ),
    );
    const recipe = delayedScaling({ amaxHistoryLen: 1 });
    const state = createFp8Meta(recipe);
    state.q.scale = 3;
    for (const bad of [0, Number.NaN, Number.POSITIVE_INFINITY]) {
      recordAmax(state.q, bad);
      updateFp8Meta(state, recipe);
      expect(state.q.scale).toBe(3);
    }
  });

  it("quantize/dequantize round trip within FP8 precision and record amax; inputs untouched", () => {
    const values = Float32Array.from({ length: 64 }, () => (Math.random() - 0.5) * 20);
    const snapshot = values.slice();
    const t = hostTensor("fp32", [4, 16], values);
    const meta = createFp8Meta(delayedScaling()).q;
    const amax = amaxOf(t);
    const scale = 448 / amax;
    const q8 = quantizeFp8(t, "fp8e4m3", scale, meta);
    expect(q8.dtype).toBe("fp8e4m3");
    expect(meta.amaxHistory[0]).toBe(amax);
    const back = dequantizeFp8(q8, 1 / scale);
    for (let i = 0; i < values.length; i++) {
      // e4m3 keeps 3 mantissa bits: relative error <= 2^-4 (normal range)
      expect(Math.abs(back.data[i] - values[i])).toBeLessThanOrEqual(
        Math.abs(values[i]) / 16 + 2 ** -9 / scale,
      );
    }
    expect(values).toEqual(snapshot);
    // saturation: values past the range clamp to ±448
    const big = quantizeFp8(hostTensor("fp32", [2], Float32Array.from([1e6, -1e6])), "fp8e4m3", 1);
    expect([fp8Value(big.data[0], FP8_E4M3), fp8Value(big.data[1], FP8_E4M3)]).toEqual([448, -448]);
    expect(() => quantizeFp8(t, "fp8e4m3", 0)).toThrow(/^scale: /);
  });
});
