import "@te/native";
import { formatCaseResult, getBackend, runConformance } from "@te/core";
import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { configureOrtRuntime, ortTe } from "../src/index.js";
import { CONFORMANCE_DIR } from "./conformance-dir.js";

beforeAll(() => configureOrtRuntime({ ort }));

describe("ort.te: native.cpu (@te/native) on ORT CPU tensors", () => {
  it("has native.cpu to run (the addon is built with the workspace)", () => {
    expect(getBackend("native.cpu")?.tensors.kind).toBe("host");
    expect(ortTe.family).toBe(getBackend("native.cpu")?.family);
  });

  for (const dtype of ["fp32", "fp16"] as const) {
    it(`passes every case in ${dtype}, forward and gradients`, async () => {
      const summary = await runConformance({ dir: CONFORMANCE_DIR, backend: ortTe, dtype });
      expect(summary.results.filter((r) => r.status !== "pass").map(formatCaseResult)).toEqual([]);
      expect(summary.results.length).toBeGreaterThanOrEqual(50);
    });
  }
});
