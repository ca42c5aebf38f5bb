import {
  ArgumentError,
  CONFORMANCE_TOLERANCES,
  compareValues,
  DotProductAttention as HostDotProductAttention,
  type HostTensor,
  dotProductAttention as hostDotProductAttention,
  hostTensor,
  numel,
  toFloat64,
} from "@te/core";
import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import {
  configureOrtRuntime,
  DotProductAttention,
  dotProductAttention,
  type OrtTensor,
  ortTensors,
} from "../src/index.js";

beforeAll(() => configureOrtRuntime({ ort }));

const random = (shape: readonly number[]): HostTensor =>
  hostTensor(
    "fp32",
    shape,
    Float32Array.from({ length: numel(shape) }, () => Math.random() * 2 - 1),
  );
const toOrt = (t: HostTensor) => ortTensors.fromHost(t);

async function expectClose(name: string, got: OrtTensor | undefined, want: HostTensor | undefined) {
  const host = await ortTensors.toHost(got as OrtTensor);
  expect(host.shape, name).toEqual(want?.shape);
  const check = compareValues(
    name,
    toFloat64(host),
    toFloat64(want as HostTensor),
    CONFORMANCE_TOLERANCES.fp32,
  );
  expect(check.passed, `${name}: max error ${check.maxAbsError}`).toBe(true);
}

describe("DotProductAttention on ORT tensors", () => {
  it("trains like the host module: TE's defaults (sbhd, causal), GQA, post-scale bias with its gradient", async () => {
    const config = { numAttentionHeads: 4, kvChannels: 16, numGqaGroups: 2 };
    const [s, b] = [10, 2];
    const q = random([s, b, 4, 16]);
    const k = random([s, b, 2, 16]);
    const v = random([s, b, 2, 16]);
    const bias = random([1, 4, s, s]);
    const dO = random([s, b, 4, 16]);
    const call = { coreAttentionBiasType: "post_scale_bias" } as const;

    const module = new DotProductAttention(config);
    const out = await module.forward(await toOrt(q), await toOrt(k), await toOrt(v), {
      ...call,
      coreAttentionBias: await toOrt(bias),
    });
    expect(out.backend).toBe("ort.native"); // training: the fused ops have no backward
    expect(out.params.maskType).toBe("causal");
    const grads = await out.backward(await toOrt(dO));

    const host = await new HostDotProductAttention(config).forward(q, k, v, {
      ...call,
      coreAttentionBias: bias,
    });
    const hostGrads = await host.backward(dO);
    await expectClose("output", out.output, host.output);
    await expectClose("lse", out.lse, host.lse);
    await expectClose("dq", grads.dq, hostGrads.dq);
    await expectClose("dk", grads.dk, hostGrads.dk);
    await expectClose("dv", grads.dv, hostGrads.dv);
    await expectClose("dbias", grads.dbias, hostGrads.dbias);
    await expect(out.backward(await toOrt(dO))).rejects.toThrow(/already used/);
  });

  it("runs inference on ORT's fused op, with a padding mask turned into cu_seqlens", async () => {
    const [b, s, h, d] = [2, 7, 2, 8];
    const q = random([b, s, h, d]);
    const k = random([b, s, h, d]);
    const v = random([b, s, h, d]);
    // [b, 1, 1, s], 1 = padding: lengths 7 and 4.
    const maskData = Uint8Array.from({ length: b * s }, (_, i) => (i >= s && i % s >= 4 ? 1 : 0));
    const attentionMask = { shape: [b, 1, 1, s] as [number, number, number, number], data: maskData };
    const options = { attnMaskType: "padding_causal", attentionMask } as const;

    const out = await dotProductAttention(await toOrt(q), await toOrt(k), await toOrt(v), options);
    expect(out.backend).toBe("ort.fused");
    const host = await hostDotProductAttention(q, k, v, options);
    await expectClose("output", out.output, host.output);
    await expectClose("lse", out.lse, host.lse);
    await expect(out.backward(await toOrt(q))).rejects.toSatisfy((e) => ArgumentError.isInstance(e));
  });

  it("names the argument that is wrong", async () => {
    const q = await toOrt(random([1, 4, 2, 8]));
    const k = await toOrt(random([1, 4, 2, 4]));
    await expect(dotProductAttention(q, k, k)).rejects.toSatisfy(
      (e) => ArgumentError.isInstance(e) && (e as ArgumentError).argument === "key_layer",
    );
  });
});
