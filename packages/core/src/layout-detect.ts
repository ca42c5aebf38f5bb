import type { TensorInfo } from "./backend.js";
import { ArgumentError } from "./errors.js";
import { type QkvFormat, type QkvLayout, type QkvLayoutGroup, qkvLayoutOf } from "./layout.js";
import { contiguousStrides } from "./tensor.js";

/**
 * TE's get_qkv_layout: which of the 15 layouts q, k and v form, from their shapes, strides, storage
 * and offsets. q, k, v as the three slices of one [.., 3, h, d] buffer are `3hd`, of one
 * [.., h, 3, d] buffer `h3d`; k, v as the slices of one [.., 2, h, d] / [.., h, 2, d] buffer are
 * `hd_2hd` / `hd_h2d`; anything else with a unit-stride head dim is three separate tensors
 * (`hd_hd_hd`). Views whose head dim is not unit-stride cannot be described by any layout.
 */

const RANK_OF_FORMAT: Record<QkvFormat, number> = { bshd: 4, sbhd: 4, thd: 3 };

const stridesOf = (t: TensorInfo): readonly number[] => t.strides ?? contiguousStrides(t.shape);

const sameStorage = (a: TensorInfo, b: TensorInfo): boolean =>
  a.storage !== undefined && a.storage === b.storage;

const sameShape = (a: TensorInfo, b: TensorInfo): boolean =>
  a.shape.length === b.shape.length && a.shape.every((x, i) => x === b.shape[i]);

/**
 * Whether `views` are the n slices, in order, of one contiguous buffer whose shape is the views'
 * shape with a dim of n inserted before h ("before-h": 3hd/2hd) or before d ("before-d": h3d/h2d).
 */
function areSlicesOfPackedBuffer(views: readonly TensorInfo[], where: "before-h" | "before-d"): boolean {
  const first = views[0];
  if (!views.every((t) => sameStorage(first, t) && sameShape(first, t))) return false;
  const rank = first.shape.length;
  const packAt = where === "before-h" ? rank - 2 : rank - 1;
  const packedShape = [...first.shape.slice(0, packAt), views.length, ...first.shape.slice(packAt)];
  const packed = contiguousStrides(packedShape);
  const expected = [...packed.slice(0, packAt), ...packed.slice(packAt + 1)];
  const step = packed[packAt];
  const base = first.offset ?? 0;
  return views.every((t, i) => {
    const s = stridesOf(t);
    const dimsMatch = t.shape.every((n, dim) => n === 1 || s[dim] === expected[dim]);
    return dimsMatch && (t.offset ?? 0) === base + i * step;
  });
}

function describe(name: string, t: TensorInfo): string {
  const storage = t.storage === undefined ? "own storage" : "storage given";
  return `${name} shape [${t.shape.join(", ")}] strides [${stridesOf(t).join(", ")}] offset ${t.offset ?? 0} (${storage})`;
}

/** The layout group q, k, v form (format-independent); throws when none describes them. */
export function detectQkvLayoutGroup(
  q: TensorInfo,
  k: TensorInfo,
  v: TensorInfo,
  qkvFormat: QkvFormat,
): QkvLayoutGroup {
  const rank = RANK_OF_FORMAT[qkvFormat];
  for (const [name, t] of [
    ["query_layer", q],
    ["key_layer", k],
    ["value_layer", v],
  ] as const) {
    if (t.shape.length !== rank) {
      throw new ArgumentError(
        name,
        `a rank-${rank} tensor for qkv_format "${qkvFormat}"`,
        `shape [${t.shape.join(", ")}]`,
      );
    }
    if (t.strides !== undefined && t.strides.length !== rank) {
      throw new ArgumentError(`${name}.strides`, `${rank} strides`, t.strides);
    }
  }
  if (sameStorage(q, k) && sameStorage(k, v)) {
    if (areSlicesOfPackedBuffer([q, k, v], "before-h")) return "3hd";
    if (areSlicesOfPackedBuffer([q, k, v], "before-d")) return "h3d";
  }
  if (sameStorage(k, v)) {
    if (areSlicesOfPackedBuffer([k, v], "before-h")) return "hd_2hd";
    if (areSlicesOfPackedBuffer([k, v], "before-d")) return "hd_h2d";
  }
  const unitHeadDim = [q, k, v].every((t) => t.shape[rank - 1] === 1 || stridesOf(t)[rank - 1] === 1);
  if (unitHeadDim) return "hd_hd_hd";
  throw new ArgumentError(
    "qkv_layout",
    "q, k, v forming one of TE's layouts (slices of one packed buffer, or tensors with a unit-stride head dim); " +
      `found ${describe("q", q)}; ${describe("k", k)}; ${describe("v", v)}`,
  );
}

/** TE's get_qkv_layout: the layout of q, k, v in `qkvFormat`. */
export function detectQkvLayout(
  q: TensorInfo,
  k: TensorInfo,
  v: TensorInfo,
  qkvFormat: QkvFormat,
): QkvLayout {
  return qkvLayoutOf(qkvFormat, detectQkvLayoutGroup(q, k, v, qkvFormat));
}
