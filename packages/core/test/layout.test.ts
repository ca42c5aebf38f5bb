import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { TensorInfo } from "../src/backend.js";
import { ArgumentError } from "../src/errors.js";
import {
  QKV_FORMATS,
  QKV_LAYOUT_GROUPS,
  QKV_LAYOUTS,
  type QkvFormat,
  type QkvLayoutGroup,
  qkvFormatOf,
  qkvLayoutGroupOf,
  qkvLayoutOf,
} from "../src/layout.js";
import { detectQkvLayout } from "../src/layout-detect.js";
import { contiguousStrides } from "../src/tensor.js";

interface Dims {
  b: number;
  s: number;
  h: number;
  hg: number;
  d: number;
}

const leadOf = (format: QkvFormat, x: Dims): number[] =>
  format === "bshd" ? [x.b, x.s] : format === "sbhd" ? [x.s, x.b] : [x.b * x.s];

/** n views (slices) of one contiguous buffer with a packing dim of n before h or before d. */
function slices(
  lead: number[],
  heads: number,
  d: number,
  n: number,
  where: "before-h" | "before-d",
): TensorInfo[] {
  const storage = {};
  const packed = where === "before-h" ? [...lead, n, heads, d] : [...lead, heads, n, d];
  const strides = contiguousStrides(packed);
  const at = where === "before-h" ? lead.length : lead.length + 1;
  const viewStrides = [...strides.slice(0, at), ...strides.slice(at + 1)];
  return Array.from({ length: n }, (_, i) => ({
    shape: [...lead, heads, d],
    strides: viewStrides,
    dtype: "fp32",
    storage,
    offset: i * strides[at],
  }));
}

const own = (shape: number[]): TensorInfo => ({
  shape,
  strides: contiguousStrides(shape),
  dtype: "fp32",
  storage: {},
  offset: 0,
});

/** q, k, v as TE would hand them over for a layout. */
function viewsOf(format: QkvFormat, group: QkvLayoutGroup, x: Dims): [TensorInfo, TensorInfo, TensorInfo] {
  const lead = leadOf(format, x);
  switch (group) {
    case "3hd": {
      const [q, k, v] = slices(lead, x.h, x.d, 3, "before-h");
      return [q, k, v];
    }
    case "h3d": {
      const [q, k, v] = slices(lead, x.h, x.d, 3, "before-d");
      return [q, k, v];
    }
    case "hd_2hd": {
      const [k, v] = slices(lead, x.hg, x.d, 2, "before-h");
      return [own([...lead, x.h, x.d]), k, v];
    }
    case "hd_h2d": {
      const [k, v] = slices(lead, x.hg, x.d, 2, "before-d");
      return [own([...lead, x.h, x.d]), k, v];
    }
    case "hd_hd_hd":
      return [own([...lead, x.h, x.d]), own([...lead, x.hg, x.d]), own([...lead, x.hg, x.d])];
  }
}

const dims = fc.record({
  b: fc.integer({ min: 2, max: 4 }),
  s: fc.integer({ min: 2, max: 6 }),
  h: fc.integer({ min: 2, max: 4 }),
  hg: fc.integer({ min: 2, max: 4 }),
  d: fc.integer({ min: 2, max: 8 }),
});

describe("layout groups", () => {
  it("format and group round trip through every layout", () => {
    for (const layout of QKV_LAYOUTS)
      expect(qkvLayoutOf(qkvFormatOf(layout), qkvLayoutGroupOf(layout))).toBe(layout);
    for (const f of QKV_FORMATS)
      for (const g of QKV_LAYOUT_GROUPS) expect(qkvLayoutGroupOf(qkvLayoutOf(f, g))).toBe(g);
  });
});

describe("detectQkvLayout", () => {
  it("detects each of the 15 layouts from synthetic views", () => {
    fc.assert(
      fc.property(fc.constantFrom(...QKV_LAYOUTS), dims, (layout, x) => {
        const format = qkvFormatOf(layout);
        const group = qkvLayoutGroupOf(layout);
        // packed q/k/v share the head count
        const d = group === "3hd" || group === "h3d" ? { ...x, hg: x.h } : x;
        const [q, k, v] = viewsOf(format, group, d);
        expect(detectQkvLayout(q, k, v, format)).toBe(layout);
      }),
      { numRuns: 300 },
    );
  });

  it("slices of one buffer in the wrong order are separate tensors, not a packed layout", () => {
    const [q, k, v] = slices([2, 3], 2, 4, 3, "before-h");
    expect(detectQkvLayout(k, q, v, "bshd")).toBe("bshd_bshd_bshd");
    const [k2, v2] = slices([2, 3], 2, 4, 2, "before-d");
    expect(detectQkvLayout(own([2, 3, 2, 4]), v2, k2, "bshd")).toBe("bshd_bshd_bshd");
  });

  it("tensors without storage identity are never packed", () => {
    const [q, k, v] = slices([2, 3], 2, 4, 3, "before-h").map(({ storage: _, ...rest }) => rest);
    expect(detectQkvLayout(q, k, v, "bshd")).toBe("bshd_bshd_bshd");
  });

  it("a head dim that is not unit-stride is an error listing what was found", () => {
    const q: TensorInfo = {
      shape: [2, 3, 2, 4],
      strides: [24, 8, 1, 2],
      dtype: "fp32",
      storage: {},
      offset: 0,
    };
    expect(() => detectQkvLayout(q, own([2, 3, 2, 4]), own([2, 3, 2, 4]), "bshd")).toThrow(
      /^qkv_layout: .*found q shape \[2, 3, 2, 4\] strides \[24, 8, 1, 2\]/,
    );
  });

  it("wrong ranks for the format name the tensor", () => {
    let err: unknown;
    try {
      detectQkvLayout(own([2, 3, 4]), own([2, 3, 4]), own([2, 3, 4]), "bshd");
    } catch (e) {
      err = e;
    }
    expect(ArgumentError.isInstance(err) && (err as ArgumentError).argument).toBe("query_layer");
  });
});
