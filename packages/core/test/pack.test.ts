import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cuSeqlensFromSeqlens, uniformCuSeqlensPadded } from "../src/cu-seqlens.js";
import { packToThd, transposeFormat, unpackFromThd } from "../src/pack.js";
import { hostTensor } from "../src/tensor.js";

const sample = fc.record({
  b: fc.integer({ min: 1, max: 4 }),
  s: fc.integer({ min: 1, max: 7 }),
  h: fc.integer({ min: 1, max: 3 }),
  d: fc.integer({ min: 1, max: 5 }),
  format: fc.constantFrom("bshd" as const, "sbhd" as const),
  padded: fc.boolean(),
  seed: fc.nat(),
});

const at = (format: "bshd" | "sbhd", b: number, s: number, bi: number, i: number) =>
  format === "bshd" ? bi * s + i : i * b + bi;

describe("thd packing", () => {
  it("pack then unpack keeps the valid tokens and zeroes the padding; inputs untouched", () => {
    fc.assert(
      fc.property(sample, ({ b, s, h, d, format, padded, seed }) => {
        const shape = format === "bshd" ? [b, s, h, d] : [s, b, h, d];
        const t = hostTensor(
          "fp32",
          shape,
          Float32Array.from({ length: b * s * h * d }, () => Math.random() + 0.5),
        );
        const snapshot = (t.data as Float32Array).slice();
        const lengths = Array.from({ length: b }, (_, i) => (seed >> (i * 3)) % (s + 1));
        const cu = cuSeqlensFromSeqlens(lengths);
        const cuPadded = padded ? uniformCuSeqlensPadded(b, s) : undefined;
        const thd = packToThd(t, format, cu, cuPadded);
        expect(thd.shape).toEqual([padded ? b * s : cu[b], h, d]);
        const back = unpackFromThd(thd, format, cu, s, cuPadded);
        expect(back.shape).toEqual(shape);
        for (let bi = 0; bi < b; bi++) {
          for (let i = 0; i < s; i++) {
            for (let e = 0; e < h * d; e++) {
              const idx = at(format, b, s, bi, i) * h * d + e;
              expect(back.data[idx]).toBe(i < lengths[bi] ? t.data[idx] : 0);
            }
          }
        }
        expect(t.data).toEqual(snapshot);
      }),
    );
  });

  it("bshd <-> sbhd transposes round trip and read strided views", () => {
    fc.assert(
      fc.property(sample, ({ b, s, h, d }) => {
        const t = hostTensor(
          "fp32",
          [b, s, h, d],
          Float32Array.from({ length: b * s * h * d }, (_, i) => i),
        );
        const sb = transposeFormat(t, "bshd", "sbhd");
        expect(sb.shape).toEqual([s, b, h, d]);
        expect(sb.data[(0 * b + (b - 1)) * h * d]).toBe(t.data[(b - 1) * s * h * d]);
        expect(transposeFormat(sb, "sbhd", "bshd").data).toEqual(t.data);
        // a non-contiguous view: sbhd strides over the bshd buffer
        const view = { ...t, shape: [s, b, h, d], strides: [h * d, s * h * d, d, 1] };
        expect(transposeFormat(view, "sbhd", "bshd").data).toEqual(t.data);
      }),
    );
  });

  it("rejects cu_seqlens longer than s and padded offsets without room", () => {
    const t = hostTensor("fp32", [2, 3, 1, 1]);
    expect(() => packToThd(t, "bshd", Int32Array.from([0, 4, 5]))).toThrow(/^cu_seqlens: /);
    expect(() => packToThd(t, "bshd", Int32Array.from([0, 3, 5]), Int32Array.from([0, 2, 6]))).toThrow(
      /^cu_seqlens_padded: /,
    );
  });
});
