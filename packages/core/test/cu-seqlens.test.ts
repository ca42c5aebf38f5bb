import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  cuSeqlensFromPaddingMask,
  cuSeqlensFromSeqlens,
  maxSeqlenOf,
  paddingMaskFromSeqlens,
  seqlensFromCuSeqlens,
  seqlensFromPaddingMask,
  uniformCuSeqlensPadded,
  validateCuSeqlens,
} from "../src/cu-seqlens.js";
import { ArgumentError } from "../src/errors.js";

const lengthsAndS = fc
  .integer({ min: 1, max: 24 })
  .chain((s) =>
    fc.tuple(fc.array(fc.integer({ min: 0, max: s }), { minLength: 1, maxLength: 6 }), fc.constant(s)),
  );

function argumentOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (ArgumentError.isInstance(e)) return (e as ArgumentError).argument;
    throw e;
  }
  return undefined;
}

describe("cu_seqlens", () => {
  it("mask -> lengths -> cu_seqlens -> lengths -> mask round trips", () => {
    fc.assert(
      fc.property(lengthsAndS, ([lengths, s]) => {
        const mask = paddingMaskFromSeqlens(lengths, s);
        expect(mask.shape).toEqual([lengths.length, 1, 1, s]);
        expect([...seqlensFromPaddingMask(mask)]).toEqual(lengths);
        const cu = cuSeqlensFromPaddingMask(mask);
        expect(cu[0]).toBe(0);
        expect(cu[lengths.length]).toBe(lengths.reduce((a, b) => a + b, 0));
        expect([...seqlensFromCuSeqlens(cu)]).toEqual(lengths);
        expect(maxSeqlenOf(cu)).toBe(Math.max(...lengths));
        expect(
          validateCuSeqlens("cu_seqlens_q", cu, {
            b: lengths.length,
            maxSeqlen: s,
            maxTotal: lengths.length * s,
          }),
        ).toBe(cu);
        expect(paddingMaskFromSeqlens(seqlensFromCuSeqlens(cu), s).data).toEqual(mask.data);
      }),
    );
  });

  it("left padding or holes in a padding mask are rejected, naming attention_mask", () => {
    const mask = {
      shape: [1, 1, 1, 4] as [number, number, number, number],
      data: Uint8Array.from([1, 0, 0, 0]),
    };
    expect(argumentOf(() => seqlensFromPaddingMask(mask))).toBe("attention_mask");
    const notPadding = { shape: [1, 1, 4, 4] as [number, number, number, number], data: new Uint8Array(16) };
    expect(argumentOf(() => seqlensFromPaddingMask(notPadding))).toBe("attention_mask");
  });

  it("uniform padded offsets are multiples of s", () => {
    expect([...uniformCuSeqlensPadded(3, 5)]).toEqual([0, 5, 10, 15]);
  });

  it("every malformed cu_seqlens is an ArgumentError naming it", () => {
    const cases: [unknown, Parameters<typeof validateCuSeqlens>[2]][] = [
      [[0, 1, 2], {}], // not an Int32Array
      [Int32Array.from([0, 2]), { b: 2 }], // wrong length
      [Int32Array.from([1, 2, 3]), {}], // does not start at 0
      [Int32Array.from([0, 3, 2]), {}], // decreasing
      [Int32Array.from([0, 2, 4]), { total: 5 }], // last != total
      [Int32Array.from([0, 2, 9]), { maxSeqlen: 4 }], // a length > max_seqlen
      [Int32Array.from([0, 2, 9]), { maxTotal: 8 }], // more tokens than the tensor has
      [new Int32Array(0), {}],
    ];
    for (const [cu, expect_] of cases)
      expect(argumentOf(() => validateCuSeqlens("cu_seqlens_kv", cu, expect_))).toBe("cu_seqlens_kv");
    expect(argumentOf(() => cuSeqlensFromSeqlens([1, -1]))).toBe("seqlens[1]");
  });
});
