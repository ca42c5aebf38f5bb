import { makeParams } from "@te/core";
import * as ort from "onnxruntime-node";
import { afterEach, describe, expect, it } from "vitest";
import { configureOrtRuntime, ortFused, ortNative, ortTensors } from "../src/index.js";

afterEach(() => configureOrtRuntime({ ort }));

describe("ONNX Runtime configuration", () => {
  const p = makeParams({ b: 1, h: 2, d: 16, sq: 8, device: "ort" });
  const context = { cudaArch: null, env: {} };

  it("refuses ort.fused with a reason on runtimes older than its ops", () => {
    configureOrtRuntime({ ort: { ...ort, env: { versions: { common: "1.22.1" } } } });
    const verdict = ortFused.explain(p, context);
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) expect(verdict.reasons.map((r) => r.rule)).toEqual(["ort.fused.runtime_version"]);
    configureOrtRuntime({ ort });
    expect(ortFused.explain(p, context).ok).toBe(true);
  });

  it("reports a runtime failure as a BackendError naming the backend", async () => {
    const failing = {
      ...ort,
      InferenceSession: { create: async () => Promise.reject(new Error("no execution provider here")) },
    };
    configureOrtRuntime({ ort: failing });
    const x = await ortTensors.fromHost({
      dtype: "fp32",
      shape: [1, 8, 2, 16],
      strides: [256, 32, 16, 1],
      offset: 0,
      data: new Float32Array(256),
    });
    await expect(ortNative.forward({ q: x, k: x, v: x }, p)).rejects.toThrow(
      /\[ort\.native\] ONNX Runtime failed: no execution provider here/,
    );
  });
});
