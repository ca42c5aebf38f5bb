import { type CaseResult, formatCaseResult, runConformance } from "@te/core";
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, test } from "vitest";
import { tfjsNativeBackend } from "../src/index.js";
import { CONFORMANCE_DIR } from "./conformance-dir.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

describe("tfjs.native on tfjs's cpu backend, fp32", () => {
  test("every conformance case passes with gradients", async () => {
    const results: CaseResult[] = [];
    const summary = await runConformance({
      dir: CONFORMANCE_DIR,
      backend: tfjsNativeBackend,
      dtype: "fp32",
      onResult: (r) => results.push(r),
    });
    const notPassed = results.filter((r) => r.status !== "pass").map(formatCaseResult);
    expect(notPassed).toEqual([]);
    expect(summary.passed).toBe(50);
  });

  test("leaks no tensors over whole cases (forward, backward, runner disposal)", async () => {
    const before = tf.memory().numTensors;
    await runConformance({ dir: CONFORMANCE_DIR, backend: tfjsNativeBackend, filter: "mask_padding_causal" });
    expect(tf.memory().numTensors).toBe(before);
  });
});
