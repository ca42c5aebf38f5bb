import {
  ArgumentError,
  type AttentionParams,
  type HostTensor,
  hostTensor,
  NoBackendError,
  referenceBackend,
  toFloat64,
} from "@te/core";
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, test } from "vitest";
import { callParams, DotProductAttention, dotProductAttention } from "../src/index.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const random = (shape: number[]) => tf.randomUniform(shape, -1, 1, "float32");
const host = (t: tf.Tensor): HostTensor => hostTensor("fp32", t.shape, t.dataSync() as Float32Array);

function expectClose(got: tf.Tensor, want: HostTensor, tol = 1e-4) {
  const g = got.dataSync();
  const w = toFloat64(want);
  expect(got.shape).toEqual([...want.shape]);
  let worst = 0;
  for (let i = 0; i < w.length; i++) {
    const err = Math.abs(g[i] - w[i]) - tol * Math.abs(w[i]);
    if (!(err <= tol)) worst = Math.max(worst, Number.isNaN(err) ? Number.POSITIVE_INFINITY : err);
  }
  expect(worst).toBe(0);
}

/** The reference backend's o and gradients for the same call, on host copies of the inputs. */
async function reference(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  dO: tf.Tensor,
  p: AttentionParams,
  seed = 0,
  offset = 0,
) {
  const rp = { ...p, device: "host" };
  const fwd = await referenceBackend.forward(
    { q: host(q), k: host(k), v: host(v), dropoutSeed: seed, dropoutOffset: offset },
    rp,
  );
  const g = await referenceBackend.backward(fwd.saved, host(dO), rp);
  return { o: fwd.o, ...g };
}

describe("dotProductAttention on tf.Tensors", () => {
  test("GQA causal sbhd: output and tf.grads gradients equal the reference", async () => {
    const [s, b, h, hg, d] = [13, 2, 4, 2, 16];
    const q = random([s, b, h, d]);
    const k = random([s, b, hg, d]);
    const v = random([s, b, hg, d]);
    const dO = random([s, b, h, d]);
    const options = {
      numAttentionHeads: h,
      numGqaGroups: hg,
      kvChannels: d,
      qkvFormat: "sbhd",
      attnMaskType: "causal",
    } as const;
    const result = dotProductAttention(q, k, v, options);
    expect(result.backend).toBe("tfjs.native");
    const [dq, dk, dv] = tf.grads(
      (a: tf.Tensor, bb: tf.Tensor, c: tf.Tensor) => dotProductAttention(a, bb, c, options).o,
    )([q, k, v], dO);
    const want = await reference(q, k, v, dO, callParams(q, k, v, options, {}));
    expectClose(result.o, want.o);
    expectClose(dq, want.dq);
    expectClose(dk, want.dk);
    expectClose(dv, want.dv);
  });

  test("dropout drops the same elements as the reference's counter RNG, in forward and backward", async () => {
    const [b, s, h, d] = [2, 9, 2, 8];
    const q = random([b, s, h, d]);
    const k = random([b, s, h, d]);
    const v = random([b, s, h, d]);
    const dO = random([b, s, h, d]);
    const options = {
      numAttentionHeads: h,
      kvChannels: d,
      qkvFormat: "bshd",
      attnMaskType: "no_mask",
      attentionDropout: 0.3,
      dropoutSeed: 12345,
      dropoutOffset: 7,
    } as const;
    const o = dotProductAttention(q, k, v, options).o;
    const [dq, dk, dv] = tf.grads(
      (a: tf.Tensor, bb: tf.Tensor, c: tf.Tensor) => dotProductAttention(a, bb, c, options).o,
    )([q, k, v], dO);
    const want = await reference(q, k, v, dO, callParams(q, k, v, options, {}), 12345, 7);
    expectClose(o, want.o);
    expectClose(dq, want.dq);
    expectClose(dk, want.dk);
    expectClose(dv, want.dv);
    const without = dotProductAttention(q, k, v, { ...options, attentionDropout: 0 }).o;
    expect(tf.max(tf.abs(tf.sub(o, without))).dataSync()[0]).toBeGreaterThan(1e-3);
  });

  test("bad arguments are ArgumentErrors naming the argument (core's validation, TE's names)", () => {
    const q = random([2, 5, 4, 8]);
    const call = () =>
      dotProductAttention(q, random([2, 5, 3, 8]), random([2, 5, 3, 8]), {
        numAttentionHeads: 4,
        numGqaGroups: 3,
        kvChannels: 8,
        qkvFormat: "bshd",
      });
    expect(call).toThrow(ArgumentError);
    expect(call).toThrow(/^num_gqa_groups: /);
    expect(() =>
      dotProductAttention(q, q, q, { numAttentionHeads: 2, kvChannels: 8, qkvFormat: "bshd" }),
    ).toThrow(/^query_layer: expected 2 heads/);
    expect(() =>
      dotProductAttention(q, q, q, { numAttentionHeads: 4, kvChannels: 8, qkvFormat: "thd" }),
    ).toThrow(/^query_layer: expected a rank-3 tensor/);
  });

  test("NVTE_UNFUSED_ATTN=0 leaves no backend and the error says why", () => {
    const q = random([1, 4, 2, 8]);
    const run = () =>
      dotProductAttention(q, q, q, {
        numAttentionHeads: 2,
        kvChannels: 8,
        qkvFormat: "bshd",
        selection: { env: { NVTE_UNFUSED_ATTN: "0", NVTE_FUSED_ATTN: "0", NVTE_FLASH_ATTN: "0" } },
      });
    expect(run).toThrow(NoBackendError);
    expect(run).toThrow(/tfjs\.native.*NVTE_UNFUSED_ATTN=0/);
  });
});

describe("DotProductAttention layer", () => {
  test("flattens heads as TE does and trains its learnable softmax offset with an optimizer", () => {
    const [b, s, h, d] = [2, 6, 2, 4];
    const layer = new DotProductAttention({
      numAttentionHeads: h,
      kvChannels: d,
      qkvFormat: "bshd",
      attnMaskType: "no_mask",
      softmaxType: "learnable",
    });
    const q = random([b, s, h, d]);
    const k = random([b, s, h, d]);
    const v = random([b, s, h, d]);
    const out = layer.apply(q, k, v);
    expect(out.shape).toEqual([b, s, h * d]);
    expect(layer.lastBackend).toBe("tfjs.native");
    // A large offset soaks up probability mass, shrinking |o|: minimising -sum(o^2) must push it down.
    const optimizer = tf.train.sgd(1);
    const before = layer.softmaxOffset!.dataSync().slice();
    optimizer.minimize(
      () => tf.neg(tf.sum(tf.square(layer.apply(q, k, v)))) as tf.Scalar,
      false,
      layer.trainableWeights,
    );
    const after = layer.softmaxOffset!.dataSync();
    for (let i = 0; i < h; i++) expect(after[i]).toBeLessThan(before[i]);
    layer.dispose();
  });
});
