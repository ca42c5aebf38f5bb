import { describe, expect, it } from "vitest";
import { dropoutKeep, dropoutKeepRow, dropoutThreshold, philox4x32 } from "../src/dropout-rng.js";

const hex = (w: Uint32Array) => [...w].map((x) => x.toString(16).padStart(8, "0"));

describe("Philox-4x32-10", () => {
  it("matches the known-answer vectors of Random123", () => {
    expect(hex(philox4x32([0, 0, 0, 0], [0, 0]))).toEqual(["6627e8d5", "e169c58d", "bc57ac4c", "9b00dbd8"]);
    const ones = 0xffffffff;
    expect(hex(philox4x32([ones, ones, ones, ones], [ones, ones]))).toEqual([
      "408f276d",
      "41c83b0e",
      "a20bc7c6",
      "6d5451fd",
    ]);
    expect(
      hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])),
    ).toEqual(["d16cfe09", "94fdcceb", "5001e420", "24126ea1"]);
  });
});

describe("dropout keep bits", () => {
  const stream = { seed: 1234, offset: 7, p: 0.25, heads: 3 };

  it("a row agrees with the element-wise definition", () => {
    const row = dropoutKeepRow(stream, 1, 2, 5, 37, new Uint8Array(37));
    for (let j = 0; j < 37; j++) expect(row[j] === 1).toBe(dropoutKeep(stream, 1, 2, 5, j));
  });

  it("is reproducible and depends on seed, offset and coordinates", () => {
    const a = dropoutKeepRow(stream, 0, 0, 0, 256, new Uint8Array(256));
    expect(dropoutKeepRow(stream, 0, 0, 0, 256, new Uint8Array(256))).toEqual(a);
    expect(dropoutKeepRow({ ...stream, seed: 1235 }, 0, 0, 0, 256, new Uint8Array(256))).not.toEqual(a);
    expect(dropoutKeepRow({ ...stream, offset: 8 }, 0, 0, 0, 256, new Uint8Array(256))).not.toEqual(a);
    expect(dropoutKeepRow(stream, 0, 1, 0, 256, new Uint8Array(256))).not.toEqual(a);
    expect(dropoutKeepRow(stream, 0, 0, 1, 256, new Uint8Array(256))).not.toEqual(a);
  });

  it("drops about p of the elements", () => {
    let kept = 0;
    const n = 4096;
    const row = new Uint8Array(n);
    for (let i = 0; i < 16; i++) {
      dropoutKeepRow(stream, 0, 1, i, n, row);
      for (const k of row) kept += k;
    }
    expect(kept / (16 * n)).toBeGreaterThan(0.74);
    expect(kept / (16 * n)).toBeLessThan(0.76);
  });

  it("p = 0 keeps everything; p outside [0, 1) is refused", () => {
    expect(dropoutKeepRow({ ...stream, p: 0 }, 0, 0, 0, 64, new Uint8Array(64)).every((k) => k === 1)).toBe(
      true,
    );
    expect(() => dropoutThreshold(1)).toThrow(RangeError);
    expect(() => dropoutThreshold(-0.1)).toThrow(RangeError);
  });
});
