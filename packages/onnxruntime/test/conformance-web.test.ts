import { formatCaseResult, runConformance } from "@te/core";
import * as ort from "onnxruntime-web";
import { beforeAll, describe, expect, it } from "vitest";
import { configureOrtRuntime, ortFused, ortNative } from "../src/index.js";
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
});
