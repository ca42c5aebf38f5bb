import {
  type AttentionInputs,
  attentionBackward,
  attentionForward,
  buildProblem,
  fromFloat64,
  gather,
  type HostTensor,
  makeParams,
  registerBackend,
  scatter,
  sequenceView,
  toFloat64,
  unregisterBackend,
} from "@te/core";
import * as tf from "@tensorflow/tfjs";
import { beforeAll, expect, test } from "vitest";
import {
  createHostKernelBackend,
  dotProductAttention,
  isTfjsAttentionBackend,
  registerTfjsKernels,
  type SyncHostAttention,
  tfjsNativeBackend,
} from "../src/index.js";

/** The float64 reference's math as a synchronous host kernel (a stand-in for TE's CPU kernel). */
const referenceKernel: SyncHostAttention = {
  id: "reference",
  forward(inputs, p) {
    const pr = buildProblem(inputs, p);
    const { o, lse } = attentionForward(pr);
    return {
      o: scatter(o, p.qkvFormat, pr.qDims(p.dv), inputs.q.shape[0], "fp32"),
      lse: fromFloat64("fp32", [p.b, p.h, p.sq], lse),
    };
  },
  backwardFromStats(inputs, o, lse, dO, p) {
    const pr = buildProblem(inputs, p);
    const fmt = p.qkvFormat;
    const oDims = pr.qDims(p.dv);
    const canonical = (t: HostTensor, name: string) => gather(t, sequenceView(name, t, fmt, oDims), oDims);
    const g = attentionBackward(pr, canonical(o, "o"), toFloat64(lse), canonical(dO, "dO"));
    const rows = (t: HostTensor) => t.shape[0];
    return {
      dq: scatter(g.dq, fmt, pr.qDims(p.d), rows(inputs.q), "fp32"),
      dk: scatter(g.dk, fmt, pr.kvDims(p.d), rows(inputs.k), "fp32"),
      dv: scatter(g.dv, fmt, pr.kvDims(p.dv), rows(inputs.v), "fp32"),
      dbias: g.dbias && inputs.bias ? fromFloat64("fp32", inputs.bias.shape, g.dbias) : undefined,
      dSoftmaxOffset: g.dOffset ? fromFloat64("fp32", [p.h], g.dOffset) : undefined,
    };
  },
};

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];

beforeAll(async () => {
  await tf.setBackend("cpu");
});

test("a host kernel registered as tfjs kernels trains through tf.grads: same values and gradients as tfjs.native", () => {
  const fused = createHostKernelBackend("reference", "tfjs.over-reference");
  expect(isTfjsAttentionBackend(fused)).toBe(false);
  registerTfjsKernels(referenceKernel);
  expect(isTfjsAttentionBackend(fused)).toBe(true);

  const [b, s, h, hg, d] = [2, 11, 4, 2, 8];
  const options = {
    numAttentionHeads: h,
    numGqaGroups: hg,
    kvChannels: d,
    qkvFormat: "bshd",
    attnMaskType: "causal",
    softmaxType: "learnable",
  } as const;
  const q = tf.randomNormal([b, s, h, d]);
  const k = tf.randomNormal([b, s, hg, d]);
  const v = tf.randomNormal([b, s, hg, d]);
  const bias = tf.randomNormal([1, h, s, s]);
  const offset = tf.randomNormal([h]);
  const dO = tf.randomNormal([b, s, h, d]);
  const run = (backendId: string) =>
    tf.grads(
      (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, bb: tf.Tensor, oo: tf.Tensor) =>
        dotProductAttention(qq, kk, vv, {
          ...options,
          coreAttentionBias: bb,
          softmaxOffset: oo,
          selection: { backends: [backendId] },
        }).o,
    )([q, k, v, bias, offset], dO);

  registerBackend(fused);
  try {
    const viaKernels = run("tfjs.over-reference");
    const viaOps = run(tfjsNativeBackend.id);
    const names = ["dq", "dk", "dv", "dbias", "dsoftmax_offset"];
    const diffs = Object.fromEntries(names.map((n, i) => [n, maxDiff(viaKernels[i], viaOps[i])]));
    for (const n of names) expect(diffs[n], n).toBeLessThan(1e-4);
    // Selection prefers the FlashAttention-family backend when it is eligible.
    expect(dotProductAttention(q, k, v, { ...options, softmaxOffset: offset }).backend).toBe(
      "tfjs.over-reference",
    );
    expect(() => dotProductAttention(q, k, v, options)).toThrow(/^softmax_offset: expected a \[h\] tensor/);
  } finally {
    unregisterBackend("tfjs.over-reference");
  }
});

test("an optimizer minimises through the registered kernels", () => {
  registerTfjsKernels(referenceKernel);
  const fused = createHostKernelBackend("reference", "tfjs.over-reference");
  const q = tf.variable(tf.randomNormal([1, 6, 2, 4]));
  const k = tf.randomNormal([1, 6, 2, 4]);
  const v = tf.randomNormal([1, 6, 2, 4]);
  const target = tf.randomNormal([1, 6, 2, 4]);
  const inputs = (): AttentionInputs<tf.Tensor> => ({ q, k, v });
  const params = makeParams({ b: 1, h: 2, d: 4, sq: 6, device: "tfjs", isTraining: true });
  const loss = () => tf.mean(tf.square(tf.sub(fused.attend(inputs(), params).o, target))) as tf.Scalar;
  const before = loss().dataSync()[0];
  const optimizer = tf.train.adam(0.05);
  for (let i = 0; i < 20; i++) optimizer.minimize(loss, false, [q]);
  expect(loss().dataSync()[0]).toBeLessThan(before * 0.9);
});
