import { formatCaseResult, runConformance } from "@te/core";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { beforeAll, expect, test } from "vitest";
import { tfjsNativeBackend } from "../src/index.js";
import { CONFORMANCE_DIR } from "./conformance-dir.js";

beforeAll(async () => {
  await tf.setBackend("wasm");
});

test("tfjs.native on tfjs's wasm backend passes every conformance case with gradients (fp32)", async () => {
  expect(tf.getBackend()).toBe("wasm");
  const summary = await runConformance({ dir: CONFORMANCE_DIR, backend: tfjsNativeBackend, dtype: "fp32" });
  expect(summary.results.filter((r) => r.status !== "pass").map(formatCaseResult)).toEqual([]);
  expect(summary.passed).toBe(50);
});
