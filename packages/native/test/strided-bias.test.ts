import { encodeValue, type HostTensor, hostTensor, makeParams, referenceBackend, toFloat64 } from "@te/core";
import { describe, expect, test } from "vitest";
import { nativeCpuBackend } from "../src/index.js";

const [b, h, s, d] = [2, 2, 24, 16];

function random(dtype: "fp32" | "fp16", shape: number[]): HostTensor {
  const t = hostTensor("fp32", shape);
  for (let i = 0; i < t.data.length; i++) t.data[i] = Math.random() * 2 - 1;
  if (dtype === "fp32") return t;
  const half = hostTensor("fp16", shape);
  for (let i = 0; i < t.data.length; i++) half.data[i] = encodeValue("fp16", t.data[i]);
  return half;
}

/** A [1, h, s, s] bias stored transposed ([1, h, skv, sq] in memory): last-dim stride s, not 1. */
function transposedBias(dtype: "fp32" | "fp16"): { strided: HostTensor; contiguous: HostTensor } {
  const storage = random(dtype, [1, h, s, s]);
  const strided: HostTensor = { ...storage, strides: [h * s * s, s * s, 1, s] };
  const contiguous = hostTensor(dtype, [1, h, s, s]);
  for (let hh = 0; hh < h; hh++)
    for (let i = 0; i < s; i++)
      for (let j = 0; j < s; j++) contiguous.data[(hh * s + i) * s + j] = storage.data[(hh * s + j) * s + i];
  return { strided, contiguous };
}

describe("bias views whose last stride is not 1", () => {
  test.each(["fp32", "fp16"] as const)("%s: same output and dbias as the contiguous bias", async (dtype) => {
    const p = makeParams({
      b,
      h,
      d,
      sq: s,
      dtype,
      biasType: "post_scale_bias",
      biasShape: "1hss",
      biasRequiresGrad: true,
      isTraining: true,
    });
    const qkv = {
      q: random(dtype, [b, s, h, d]),
      k: random(dtype, [b, s, h, d]),
      v: random(dtype, [b, s, h, d]),
    };
    const { strided, contiguous } = transposedBias(dtype);
    const native = nativeCpuBackend();
    const a = await native.forward({ ...qkv, bias: strided }, p);
    const c = await native.forward({ ...qkv, bias: contiguous }, p);
    expect([...a.o.data]).toEqual([...c.o.data]);
    const ref = await referenceBackend.forward({ ...qkv, bias: strided }, p);
    const got = toFloat64(a.o);
    const want = toFloat64(ref.o);
    const tol = dtype === "fp32" ? 1e-4 : 1e-2;
    for (let i = 0; i < got.length; i++)
      expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(tol * (1 + Math.abs(want[i])));
    const dO = random(dtype, [b, s, h, d]);
    const ga = await native.backward(a.saved, dO, p);
    const gc = await native.backward(c.saved, dO, p);
    expect([...ga.dbias!.data]).toEqual([...gc.dbias!.data]);
  });
});
