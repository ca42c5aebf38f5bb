import {
  formatCaseResult,
  dotProductAttention as hostDotProductAttention,
  hostTensor,
  runConformance,
  toFloat64,
} from "@te/core";
import * as ort from "onnxruntime-web";
import { beforeAll, describe, expect, it } from "vitest";
import { configureOrtRuntime, dotProductAttention, ortFused, ortNative } from "../src/index.js";
import { CONFORMANCE_DIR } from "./conformance-dir.js";

beforeAll(() => {
  ort.env.wasm.numThreads = 1;
  configureOrtRuntime({ ort, executionProviders: ["wasm"] });
});

describe("conformance on onnxruntime-web (wasm backend, in Node)", () => {
  it("ort.native passes every case in fp32, forward and gradients", async () => {
    const summary = await runConformance({ dir: CONFORMANCE_DIR, backend: ortNative, dtype: "fp32" });
    expect(summary.results.filter((r) => r.status !== "pass").map(formatCaseResult)).toEqual([]);
    expect(summary.results.length).toBeGreaterThanOrEqual(50);
  });

  it("ort.fused passes the cases it accepts in fp32 (forward)", async () => {
    const summary = await runConformance({
      dir: CONFORMANCE_DIR,
      backend: ortFused,
      dtype: "fp32",
      gradients: false,
    });
    expect(
      summary.failed,
      summary.results
        .filter((r) => r.status === "fail")
        .map(formatCaseResult)
        .join("\n"),
    ).toBe(0);
    expect(summary.passed).toBeGreaterThanOrEqual(summary.results.length - 2);
  });

  it("DotProductAttention takes onnxruntime-web tensors, forward and backward", async () => {
    const shape = [1, 6, 2, 8];
    const values = () => Float32Array.from({ length: 96 }, () => Math.random() * 2 - 1);
    const [q, k, v, dO] = [values(), values(), values(), values()];
    const web = (x: Float32Array) => new ort.Tensor("float32", x, shape);
    const options = { attnMaskType: "causal", isTraining: true } as const;
    const out = await dotProductAttention(web(q), web(k), web(v), options);
    expect(out.output).toBeInstanceOf(ort.Tensor);
    const grads = await out.backward(web(dO));

    const host = (x: Float32Array) => hostTensor("fp32", shape, x);
    const want = await hostDotProductAttention(host(q), host(k), host(v), options);
    const wantGrads = await want.backward(host(dO));
    const maxError = (a: ort.Tensor, b: Parameters<typeof toFloat64>[0]) => {
      const ref = toFloat64(b);
      return Math.max(...Array.from(a.data as Float32Array, (x, i) => Math.abs(x - ref[i])));
    };
    expect(maxError(out.output, want.output)).toBeLessThan(1e-5);
    expect(maxError(grads.dq, wantGrads.dq)).toBeLessThan(1e-5);
    expect(maxError(grads.dk, wantGrads.dk)).toBeLessThan(1e-5);
    expect(maxError(grads.dv, wantGrads.dv)).toBeLessThan(1e-5);
  });
});
