/** recordPassTimes / finishPassTimes: GPU time per compute pass of a call, and refusals that say why. */
import { hostTensor, makeParams } from "@te/core";
import { beforeAll, describe, expect, it } from "vitest";
import { finishPassTimes, recordPassTimes, upload, webgpuFlash } from "../src/index.js";
import { deviceOrReason } from "./adapter.js";

let device: GPUDevice | null = null;
let reason = "";
beforeAll(async () => {
  ({ device, reason } = await deviceOrReason());
});

const withoutTimestamps = { features: new Set<string>() } as unknown as GPUDevice;

describe("pass times", () => {
  it("refuses a device without timestamp-query and a bad capacity, and a finish without a recording", async () => {
    expect(() => recordPassTimes(withoutTimestamps, 4)).toThrow(/lacks the "timestamp-query" feature/);
    if (!device) return console.warn(`skipped the rest: ${reason}`);
    if (!device.features.has("timestamp-query")) return console.warn("skipped the rest: no timestamp-query");
    expect(() => recordPassTimes(device as GPUDevice, 0)).toThrow(
      /passes must be an integer from 1 to 2048, got 0/,
    );
    await expect(finishPassTimes(device)).rejects.toThrow(/no recording is open/);
  });

  it("times each pass of a forward call, and counts the passes past the capacity", async () => {
    if (!device) return console.warn(`skipped: ${reason}`);
    if (!device.features.has("timestamp-query"))
      return console.warn("skipped: the device has no timestamp-query");
    const p = makeParams({ b: 1, h: 2, d: 16, sq: 32, device: "webgpu", dtype: "fp32" });
    const [q, k, v] = await Promise.all(
      [0, 1, 2].map((i) => upload(hostTensor("fp32", [1, 32, 2, 16], new Float32Array(1024).fill(i / 10)))),
    );
    const run = async () => {
      const out = await webgpuFlash.forward({ q, k, v }, p);
      out.saved.release();
      out.o.buffer.destroy();
      out.lse.buffer.destroy();
    };
    recordPassTimes(device, 1);
    await run();
    await run();
    const { passes, untimed } = await finishPassTimes(device);
    expect(passes).toHaveLength(1);
    expect(passes[0].name).toMatch(/^te\.flash_forward/);
    expect(passes[0].start).toBe(0);
    expect(passes[0].end).toBeGreaterThanOrEqual(0);
    expect(passes[0].ms).toBe(passes[0].end - passes[0].start);
    expect(Number.isFinite(passes[0].ms)).toBe(true);
    expect(untimed).toBeGreaterThanOrEqual(1);
    for (const t of [q, k, v]) t.buffer.destroy();
  });
});
