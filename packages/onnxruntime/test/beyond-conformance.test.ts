import {
  type AttentionInputs,
  type AttentionParams,
  biasDims,
  CONFORMANCE_TOLERANCES,
  compareValues,
  type HostTensor,
  hostTensor,
  makeParams,
  numel,
  referenceBackend,
  toFloat64,
} from "@te/core";
import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { configureOrtRuntime, type OrtTensor, ortFused, ortNative, ortTensors } from "../src/index.js";

beforeAll(() => configureOrtRuntime({ ort }));

const random = (shape: readonly number[]): HostTensor =>
  hostTensor(
    "fp32",
    shape,
    Float32Array.from({ length: numel(shape) }, () => Math.random() * 2 - 1),
  );
const cumulative = (lengths: readonly number[]) =>
  Int32Array.from([0, ...lengths.map((_, i) => lengths.slice(0, i + 1).reduce((a, x) => a + x, 0))]);

/** Feature combinations the shared cases do not cover: each is run against the float64 reference. */
const CASES: Record<
  string,
  { params: Partial<AttentionParams>; lengths?: [number[], number[]]; maskHeads?: boolean }
> = {
  "thd, learnable softmax, sliding window, GQA": {
    params: { qkvFormat: "thd", maskType: "padding_causal", softmaxType: "learnable", window: [2, 0], hg: 2 },
    lengths: [
      [9, 3, 6],
      [9, 3, 6],
    ],
  },
  "sbhd, arbitrary per-head mask, post-scale bias bhss with gradient": {
    params: {
      qkvFormat: "sbhd",
      maskType: "arbitrary",
      biasType: "post_scale_bias",
      biasShape: "bhss",
      biasRequiresGrad: true,
    },
    maskHeads: true,
  },
  "bshd, ALiBi slopes per batch and head, padding, off_by_one": {
    params: { maskType: "padding", biasType: "alibi", alibiSlopes: "bh", softmaxType: "off_by_one", skv: 11 },
    lengths: [
      [9, 4, 1],
      [11, 5, 8],
    ],
  },
  "bshd, MQA, top-left window without a mask, dv != d": {
    params: { hg: 1, window: [1, 3], bottomRightDiagonal: false, dv: 4, skv: 12 },
  },
  "bshd, GQA, bottom-right causal with a window and learnable softmax (fused: GroupQueryAttention)": {
    params: { maskType: "causal_bottom_right", window: [3, 0], softmaxType: "learnable", hg: 2 },
  },
};

function makeInputs(
  p: AttentionParams,
  lengths?: [number[], number[]],
  maskHeads?: boolean,
): AttentionInputs<HostTensor> {
  const shapeOf = (which: "q" | "kv", heads: number, dim: number) => {
    if (p.qkvFormat === "thd") return [which === "q" ? p.tq : p.tkv, heads, dim];
    const s = which === "q" ? p.sq : p.skv;
    return p.qkvFormat === "sbhd" ? [s, p.b, heads, dim] : [p.b, s, heads, dim];
  };
  const maskShape = [p.b, maskHeads ? p.h : 1, p.sq, p.skv] as [number, number, number, number];
  return {
    q: random(shapeOf("q", p.h, p.d)),
    k: random(shapeOf("kv", p.hg, p.d)),
    v: random(shapeOf("kv", p.hg, p.dv)),
    ...(lengths ? { cuSeqlensQ: cumulative(lengths[0]), cuSeqlensKv: cumulative(lengths[1]) } : {}),
    ...(p.biasShape ? { bias: random(biasDims(p.biasShape, p.b, p.h, p.sq, p.skv)) } : {}),
    ...(p.softmaxType === "learnable" ? { softmaxOffset: random([p.h]) } : {}),
    ...(p.alibiSlopes === "bh"
      ? { alibiSlopes: Float64Array.from({ length: p.b * p.h }, () => Math.random()) }
      : {}),
    ...(p.maskType === "arbitrary"
      ? {
          attnMask: {
            shape: maskShape,
            data: Uint8Array.from({ length: numel(maskShape) }, () => (Math.random() < 0.4 ? 1 : 0)),
          },
        }
      : {}),
  };
}

async function expectClose(name: string, got: OrtTensor | undefined, want: HostTensor | undefined) {
  expect(got, name).toBeDefined();
  const host = await ortTensors.toHost(got as OrtTensor);
  expect(host.shape, name).toEqual(want?.shape);
  const check = compareValues(
    name,
    toFloat64(host),
    toFloat64(want as HostTensor),
    CONFORMANCE_TOLERANCES.fp32,
  );
  expect(
    check.passed,
    `${name}: max error ${check.maxAbsError}, first mismatch ${JSON.stringify(check.firstMismatch)}`,
  ).toBe(true);
}

describe("feature combinations beyond the shared cases, against the reference", () => {
  for (const [name, { params, lengths, maskHeads }] of Object.entries(CASES)) {
    it(name, async () => {
      const b = lengths ? lengths[0].length : 2;
      const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
      const base = makeParams({ b, h: 4, d: 8, sq: 9, device: "ort", isTraining: true, ...params });
      const p =
        lengths && base.qkvFormat === "thd" ? { ...base, tq: sum(lengths[0]), tkv: sum(lengths[1]) } : base;
      const host = makeInputs(p, lengths, maskHeads);
      const dO = random(host.q.shape.slice(0, -1).concat(p.dv));
      const up = (t?: HostTensor) => (t ? ortTensors.fromHost(t) : Promise.resolve(undefined));
      const inputs: AttentionInputs<OrtTensor> = {
        ...host,
        q: (await up(host.q)) as OrtTensor,
        k: (await up(host.k)) as OrtTensor,
        v: (await up(host.v)) as OrtTensor,
        bias: await up(host.bias),
        softmaxOffset: await up(host.softmaxOffset),
      };

      const hostP = { ...p, device: "host" };
      const ref = await referenceBackend.forward(host, hostP);
      const refGrads = await referenceBackend.backward(ref.saved, dO, hostP);

      expect(ortNative.explain(p, { cudaArch: null, env: {} })).toEqual({ ok: true });
      const fwd = await ortNative.forward(inputs, p);
      await expectClose("o", fwd.o, ref.o);
      await expectClose("lse", fwd.lse, ref.lse);
      const grads = await ortNative.backward(fwd.saved, await ortTensors.fromHost(dO), p);
      await expectClose("dq", grads.dq, refGrads.dq);
      await expectClose("dk", grads.dk, refGrads.dk);
      await expectClose("dv", grads.dv, refGrads.dv);
      if (p.biasRequiresGrad) await expectClose("dbias", grads.dbias, refGrads.dbias);
      if (p.softmaxType === "learnable")
        await expectClose("dSoftmaxOffset", grads.dSoftmaxOffset, refGrads.dSoftmaxOffset);

      const inference = { ...p, isTraining: false };
      if (ortFused.explain(inference, { cudaArch: null, env: {} }).ok) {
        const fused = await ortFused.forward(inputs, inference);
        await expectClose("fused o", fused.o, ref.o);
        await expectClose("fused lse", fused.lse, ref.lse);
      }
    });
  }
});
