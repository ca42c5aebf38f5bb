import { type HostTensor, hostTensor, makeParams, referenceBackend, toFloat64 } from "@te/core";
import * as tf from "@tensorflow/tfjs";
import { beforeAll, expect, test } from "vitest";
import { tfjsNativeBackend } from "../src/index.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

const host = (t: tf.Tensor): HostTensor => hostTensor("fp32", t.shape, t.dataSync() as Float32Array);

function maxError(got: tf.Tensor, want: HostTensor): number {
  const g = got.dataSync();
  const w = toFloat64(want);
  let worst = 0;
  for (let i = 0; i < w.length; i++)
    worst = Math.max(worst, Number.isNaN(g[i]) ? Number.POSITIVE_INFINITY : Math.abs(g[i] - w[i]));
  return worst;
}

test("thd with padding between sequences (cu_seqlens_*_padded) matches the reference, gaps stay zero", async () => {
  const [h, d] = [2, 8];
  const cuSeqlensQ = Int32Array.from([0, 3, 8]);
  const cuSeqlensQPadded = Int32Array.from([0, 4, 10]);
  const cuSeqlensKv = Int32Array.from([0, 6, 10]);
  const cuSeqlensKvPadded = Int32Array.from([0, 7, 12]);
  const p = makeParams({
    b: 2,
    h,
    d,
    sq: 5,
    skv: 6,
    tq: 10,
    tkv: 12,
    qkvFormat: "thd",
    maskType: "padding_causal_bottom_right",
    paddedThd: true,
    device: "tfjs",
    isTraining: true,
  });
  const q = tf.randomNormal([10, h, d]);
  const k = tf.randomNormal([12, h, d]);
  const v = tf.randomNormal([12, h, d]);
  const dO = tf.randomNormal([10, h, d]);
  const seqlens = { cuSeqlensQ, cuSeqlensKv, cuSeqlensQPadded, cuSeqlensKvPadded };
  const fwd = await tfjsNativeBackend.forward({ q, k, v, ...seqlens }, p);
  const g = await tfjsNativeBackend.backward(fwd.saved, dO, p);
  const rp = { ...p, device: "host" };
  const rf = await referenceBackend.forward({ q: host(q), k: host(k), v: host(v), ...seqlens }, rp);
  const rg = await referenceBackend.backward(rf.saved, host(dO), rp);
  expect(maxError(fwd.o, rf.o)).toBeLessThan(1e-4);
  expect(maxError(g.dq, rg.dq)).toBeLessThan(1e-4);
  expect(maxError(g.dk, rg.dk)).toBeLessThan(1e-4);
  expect(maxError(g.dv, rg.dv)).toBeLessThan(1e-4);
  // q rows 3 and 9 lie between and after the sequences (rows 0-2 and 4-8)
  for (const row of [3, 9]) expect(tf.max(tf.abs(fwd.o.gather([row]))).dataSync()[0]).toBe(0);
  expect(tf.max(tf.abs(fwd.o.gather([0]))).dataSync()[0]).toBeGreaterThan(0);
});
