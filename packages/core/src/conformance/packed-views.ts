import { ArgumentError } from "../errors.js";
import type { QkvLayoutGroup } from "../layout.js";
import { contiguousStrides, type HostTensor, hostTensor, isContiguous, numel } from "../tensor.js";

/**
 * Views of several same-shaped tensors [...lead, h, x] packed into one buffer, the way TE's packed
 * layouts store them: the pack axis before the heads ([...lead, n, h, x]: `3hd`, `2hd`) or after them
 * ([...lead, h, n, x]: `h3d`, `h2d`). Each view has the parts' shape and strides into the shared buffer.
 * The parts must be contiguous.
 */
export function packedViews(parts: readonly HostTensor[], packAfterHeads: boolean): HostTensor[] {
  const shape = parts[0].shape;
  const dtype = parts[0].dtype;
  for (const [i, t] of parts.entries()) {
    if (
      t.dtype !== dtype ||
      t.shape.length !== shape.length ||
      t.shape.some((n, k) => n !== shape[k]) ||
      !isContiguous(t)
    ) {
      throw new ArgumentError(
        `parts[${i}]`,
        `a contiguous ${dtype} tensor of shape [${shape}]`,
        `${t.dtype} [${t.shape}]`,
      );
    }
  }
  const lead = shape.slice(0, -2);
  const [heads, x] = shape.slice(-2);
  const n = parts.length;
  const bufferShape = packAfterHeads ? [...lead, heads, n, x] : [...lead, n, heads, x];
  const buffer = hostTensor(dtype, bufferShape);
  const strides = contiguousStrides(bufferShape);
  const packAxis = packAfterHeads ? lead.length + 1 : lead.length;
  const viewStrides = strides.filter((_, axis) => axis !== packAxis);
  const views = parts.map((_, k) => ({
    dtype,
    shape: [...shape],
    strides: viewStrides,
    offset: k * strides[packAxis],
    data: buffer.data,
  }));
  // Copy each part in (contiguous source, odometer over the view's index).
  const count = numel(shape);
  parts.forEach((part, k) => {
    const view = views[k];
    const index = new Array<number>(shape.length).fill(0);
    let at = view.offset;
    for (let e = 0; e < count; e++) {
      view.data[at] = part.data[part.offset + e];
      for (let axis = shape.length - 1; axis >= 0; axis--) {
        index[axis]++;
        at += viewStrides[axis];
        if (index[axis] < shape[axis]) break;
        at -= viewStrides[axis] * shape[axis];
        index[axis] = 0;
      }
    }
  });
  return views;
}

/**
 * q, k, v (contiguous, in one format) as views of the layout group's buffers, or the reason they cannot
 * be: `3hd`/`h3d` need k and v shaped like q, `hd_2hd`/`hd_h2d` need v shaped like k.
 */
export function inLayoutGroup(
  group: QkvLayoutGroup,
  q: HostTensor,
  k: HostTensor,
  v: HostTensor,
): { q: HostTensor; k: HostTensor; v: HostTensor } | { reason: string } {
  const same = (a: HostTensor, b: HostTensor) =>
    a.shape.length === b.shape.length && a.shape.every((n, i) => n === b.shape[i]);
  if (group === "3hd" || group === "h3d") {
    if (!same(q, k) || !same(q, v))
      return {
        reason: `${group} packs q, k and v together: they need equal shapes (h = hg, d = dv, equal lengths)`,
      };
    const [pq, pk, pv] = packedViews([q, k, v], group === "h3d");
    return { q: pq, k: pk, v: pv };
  }
  if (group === "hd_2hd" || group === "hd_h2d") {
    if (!same(k, v)) return { reason: `${group} packs k and v together: they need equal shapes (d = dv)` };
    const [pk, pv] = packedViews([k, v], group === "hd_h2d");
    return { q, k: pk, v: pv };
  }
  return { q, k, v };
}
