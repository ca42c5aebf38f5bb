import { inflateSync } from "node:zlib";
import * as tf from "@tensorflow/tfjs";
import { beforeAll, expect, test } from "vitest";
import { plotLoss } from "../src/loss-plot.js";
import { TinyTransformer } from "../src/model.js";
import { encodePng } from "../src/png.js";
import { mulberry32 } from "../src/reversal-task.js";
import { DEFAULT_MODEL, TARGET_ACCURACY, tokenAccuracy, trainReversal } from "../src/train.js";

beforeAll(async () => {
  await tf.setBackend("cpu");
});

test("an untrained model is at chance on reversal (the check below can fail)", () => {
  const model = new TinyTransformer(DEFAULT_MODEL);
  expect(tokenAccuracy(model, mulberry32(99))).toBeLessThan(0.3);
  model.dispose();
});

test(`a shortened training run on tfjs cpu reaches ${100 * TARGET_ACCURACY}% held-out token accuracy`, () => {
  const before = tf.memory().numTensors;
  const result = trainReversal({ steps: 90, batch: 64, learningRate: 0.01, model: DEFAULT_MODEL });
  expect(result.attentionBackends).toEqual(["tfjs.native", "tfjs.native"]);
  expect(result.losses.every(Number.isFinite)).toBe(true);
  expect(result.losses[result.losses.length - 1]).toBeLessThan(result.losses[0] / 10);
  expect(result.accuracy).toBeGreaterThanOrEqual(TARGET_ACCURACY);
  expect(tf.memory().numTensors).toBe(before);
});

test("the loss curve is a valid PNG of the requested size", () => {
  const png = encodePng(plotLoss([3, 2, 1, 0.5, 0.1, 0.01], 64, 32));
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  expect(png.readUInt32BE(16)).toBe(64);
  expect(png.readUInt32BE(20)).toBe(32);
  const idatLength = png.readUInt32BE(33);
  expect(png.toString("ascii", 37, 41)).toBe("IDAT");
  const raw = inflateSync(png.subarray(41, 41 + idatLength));
  expect(raw.length).toBe(32 * (64 * 3 + 1));
  expect(raw.some((byte, i) => i % (64 * 3 + 1) !== 0 && byte < 255)).toBe(true);
});
