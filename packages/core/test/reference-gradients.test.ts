import { describe, expect, it } from "vitest";
import type { AttentionInputs } from "../src/backend.js";
import { type AttentionParams, makeParams } from "../src/params.js";
import { referenceBackend } from "../src/reference/backend.js";
import { fromFloat64, toFloat64 } from "../src/reference/host-values.js";
import type { HostTensor } from "../src/tensor.js";
import { freshSeed, randomCall, randomTensor } from "./reference-helpers.js";

type Inputs = AttentionInputs<HostTensor>;

/** The loss sum(o * dO) of a forward, in float64. */
async function loss(inputs: Inputs, dO: HostTensor, p: AttentionParams): Promise<number> {
  const o = toFloat64((await referenceBackend.forward(inputs, p)).o);
  const g = toFloat64(dO);
  return o.reduce((acc, x, i) => acc + x * g[i], 0);
}

/** inputs with element n of one tensor moved by delta (a copy; the inputs are never written). */
function nudged(
  inputs: Inputs,
  name: "q" | "k" | "v" | "bias" | "softmaxOffset",
  n: number,
  delta: number,
): Inputs {
  const values = toFloat64(inputs[name]!);
  values[n] += delta;
  return { ...inputs, [name]: fromFloat64("fp64", inputs[name]!.shape, values) };
}

/** Central differences of the loss against every element of every differentiable input. */
async function checkGradients(p: AttentionParams, inputs: Inputs, dO: HostTensor, seed: number) {
  const fwd = await referenceBackend.forward(inputs, p);
  const g = await referenceBackend.backward(fwd.saved, dO, p);
  const analytic: [keyof Inputs & ("q" | "k" | "v" | "bias" | "softmaxOffset"), HostTensor | undefined][] = [
    ["q", g.dq],
    ["k", g.dk],
    ["v", g.dv],
    ["bias", g.dbias],
    ["softmaxOffset", g.dSoftmaxOffset],
  ];
  const eps = 1e-5;
  let checked = 0;
  for (const [name, grad] of analytic) {
    if (inputs[name] === undefined) continue;
    expect(grad, `${name} gradient present (seed ${seed})`).toBeDefined();
    const values = toFloat64(grad!);
    for (let n = 0; n < values.length; n++) {
      const fd =
        ((await loss(nudged(inputs, name, n, eps), dO, p)) -
          (await loss(nudged(inputs, name, n, -eps), dO, p))) /
        (2 * eps);
      expect(
        Math.abs(values[n] - fd),
        `d${name}[${n}] analytic ${values[n]} vs ${fd} (seed ${seed})`,
      ).toBeLessThan(1e-7 + 1e-6 * Math.abs(fd));
      checked++;
    }
  }
  return checked;
}

describe("reference gradients agree with finite differences", () => {
  it("GQA, post-scale bias [b,1,s,s] with grad, padding, sliding window, learnable softmax, dropout", async () => {
    const seed = freshSeed();
    const p = makeParams({
      b: 2,
      h: 4,
      hg: 2,
      d: 3,
      dv: 2,
      sq: 4,
      skv: 5,
      maskType: "padding",
      window: [2, 1],
      biasType: "post_scale_bias",
      biasShape: "b1ss",
      biasRequiresGrad: true,
      softmaxType: "learnable",
      dropout: 0.3,
      isTraining: true,
    });
    const { inputs, dO } = randomCall(p, seed);
    const full: Inputs = {
      ...inputs,
      cuSeqlensQ: Int32Array.from([0, 4, 7]),
      cuSeqlensKv: Int32Array.from([0, 5, 9]),
      bias: randomTensor(seed, 4, [2, 1, 4, 5]),
      softmaxOffset: randomTensor(seed, 6, [4]),
      dropoutSeed: seed,
      dropoutOffset: 3,
    };
    expect(await checkGradients(p, full, dO, seed)).toBeGreaterThan(100);
  });

  it("pre-scale bias [1,h,s,s], ALiBi-free causal bottom-right, sbhd, off_by_one", async () => {
    const seed = freshSeed();
    const p = makeParams({
      qkvFormat: "sbhd",
      b: 1,
      h: 2,
      d: 4,
      sq: 3,
      skv: 5,
      maskType: "causal_bottom_right",
      biasType: "pre_scale_bias",
      biasShape: "1hss",
      biasRequiresGrad: true,
      softmaxType: "off_by_one",
      softmaxScale: 0.7,
      isTraining: true,
    });
    const { inputs, dO } = randomCall(p, seed);
    const full = { ...inputs, bias: randomTensor(seed, 4, [1, 2, 3, 5], 2) };
    expect(await checkGradients(p, full, dO, seed)).toBeGreaterThan(50);
  });

  for (const biasShape of ["bhss", "11ss"] as const) {
    it(`post-scale bias ${biasShape} with grad (dbias summed over its broadcast dims), causal, GQA`, async () => {
      const seed = freshSeed();
      const p = makeParams({
        b: 2,
        h: 2,
        hg: 1,
        d: 3,
        sq: 3,
        skv: 4,
        maskType: "causal",
        biasType: "post_scale_bias",
        biasShape,
        biasRequiresGrad: true,
        isTraining: true,
      });
      const { inputs, dO } = randomCall(p, seed);
      const dims = biasShape === "bhss" ? [2, 2, 3, 4] : [1, 1, 3, 4];
      const full = { ...inputs, bias: randomTensor(seed, 4, dims) };
      expect(await checkGradients(p, full, dO, seed)).toBeGreaterThan(30);
    });
  }

  it("custom per-batch ALiBi slopes with an arbitrary mask and MQA", async () => {
    const seed = freshSeed();
    const p = makeParams({
      b: 2,
      h: 2,
      hg: 1,
      d: 3,
      sq: 3,
      skv: 4,
      maskType: "arbitrary",
      biasType: "alibi",
      alibiSlopes: "bh",
      bottomRightDiagonal: false,
      isTraining: true,
    });
    const { inputs, dO } = randomCall(p, seed);
    const mask = new Uint8Array(2 * 3 * 4);
    mask[1] = 1;
    mask[6] = 1;
    mask[13] = 1;
    const full: Inputs = {
      ...inputs,
      attnMask: { shape: [2, 1, 3, 4], data: mask },
      alibiSlopes: Float64Array.from([0.5, 0.25, 0.125, 1]),
    };
    expect(await checkGradients(p, full, dO, seed)).toBeGreaterThan(30);
  });
});
