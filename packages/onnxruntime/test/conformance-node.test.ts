import { formatCaseResult, runConformance } from "@te/core";
import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { configureOrtRuntime, ortFused, ortNative } from "../src/index.js";
import { CONFORMANCE_DIR } from "./conformance-dir.js";

const nonPassing = (results: readonly Parameters<typeof formatCaseResult>[0][]) =>
  results.filter((r) => r.status !== "pass").map(formatCaseResult);

beforeAll(() => configureOrtRuntime({ ort, executionProviders: ["cpu"] }));

describe("conformance on onnxruntime-node (CPU execution provider)", () => {
  for (const dtype of ["fp32", "fp16"] as const) {
    it(`ort.native passes every case in ${dtype}, forward and gradients`, async () => {
      const summary = await runConformance({ dir: CONFORMANCE_DIR, backend: ortNative, dtype });
      expect(nonPassing(summary.results)).toEqual([]);
      expect(summary.results.length).toBeGreaterThanOrEqual(50);
    });

    it(`ort.fused passes every case it accepts in ${dtype} (forward) and gives reasons for the rest`, async () => {
      const summary = await runConformance({
        dir: CONFORMANCE_DIR,
        backend: ortFused,
        dtype,
        gradients: false,
      });
      expect(summary.failed, nonPassing(summary.results).join("\n")).toBe(0);
      for (const r of summary.results.filter((x) => x.status === "skip")) {
        expect(r.reasons.map((x) => x.rule).every((rule) => rule.startsWith("ort.fused.gqa_op."))).toBe(true);
      }
      // Only the off_by_one/learnable cases without a causal mask are outside ORT's fused ops.
      expect(summary.passed).toBeGreaterThanOrEqual(summary.results.length - 2);
    });
  }

  it("ort.fused refuses training calls with a reason instead of running them", async () => {
    const summary = await runConformance({ dir: CONFORMANCE_DIR, backend: ortFused, filter: "base_" });
    expect(summary.skipped).toBe(summary.results.length);
    expect(summary.results.every((r) => r.reasons.some((x) => x.rule === "ort.fused.training"))).toBe(true);
  });
});
