import type { AttentionInputs } from "../src/backend.js";
import { generateValues } from "../src/conformance/inputs.js";
import type { AttentionParams } from "../src/params.js";
import { fromFloat64 } from "../src/reference/host-values.js";
import type { HostTensor } from "../src/tensor.js";

/** A fresh seed per run; tests print it in their messages so a failure can be replayed. */
export const freshSeed = (): number => Math.floor(Math.random() * 2 ** 32);

/** A contiguous fp64 tensor of uniform values in [-scale, scale). */
export function randomTensor(seed: number, stream: number, shape: number[], scale = 1): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return fromFloat64("fp64", shape, generateValues(seed, stream, n, scale));
}

/** Shape of a [b, s, heads, x] tensor in a non-thd format. */
export function shapeOf(p: AttentionParams, s: number, heads: number, x: number): number[] {
  return p.qkvFormat === "sbhd" ? [s, p.b, heads, x] : [p.b, s, heads, x];
}

/** q, k, v (and dO) for a bshd/sbhd call, fp64. */
export function randomCall(
  p: AttentionParams,
  seed: number,
): { inputs: AttentionInputs<HostTensor>; dO: HostTensor } {
  return {
    inputs: {
      q: randomTensor(seed, 0, shapeOf(p, p.sq, p.h, p.d)),
      k: randomTensor(seed, 1, shapeOf(p, p.skv, p.hg, p.d)),
      v: randomTensor(seed, 2, shapeOf(p, p.skv, p.hg, p.dv)),
    },
    dO: randomTensor(seed, 3, shapeOf(p, p.sq, p.h, p.dv)),
  };
}
