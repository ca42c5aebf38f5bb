import { makeParams } from "@te/core";
import * as tf from "@tensorflow/tfjs-core";
import { expect, test } from "vitest";
import { tfjsNativeBackend } from "../src/index.js";

// This file loads tfjs-core only (vitest isolates test files), so no gradient is registered.
test("without tfjs's gradients, training calls are refused with a reason and inference still runs", () => {
  expect(tf.getGradient("BatchMatMul")).toBeUndefined();
  const p = makeParams({ b: 1, h: 2, d: 8, sq: 4, device: "tfjs" });
  const training = tfjsNativeBackend.explain({ ...p, isTraining: true }, { cudaArch: null, env: {} });
  expect(training.ok).toBe(false);
  if (!training.ok) expect(training.reasons.map((r) => r.rule)).toEqual(["tfjs.native.gradients"]);
  expect(tfjsNativeBackend.explain(p, { cudaArch: null, env: {} }).ok).toBe(true);
});
