import { hostTensor } from "@te/core";
import { describe, expect, test } from "vitest";
import { cudaTensors, deviceInfo, loadBinding } from "../src/index.js";

describe("CUDA devices through the addon", () => {
  const info = deviceInfo();

  test("deviceInfo reports whether CUDA was compiled and lists devices with arch and memory", () => {
    expect(typeof info.cudaCompiled).toBe("boolean");
    if (!info.cudaCompiled) expect(info.devices).toEqual([]);
    for (const d of info.devices) {
      expect(d.arch).toBeGreaterThanOrEqual(50);
      expect(d.totalMemory).toBeGreaterThan(0);
    }
  });

  test.runIf(info.devices.length === 0)(
    "without a device, CUDA tensors fail with TE_ERR_NO_CUDA",
    async () => {
      await expect(cudaTensors.fromHost(hostTensor("fp32", [4]))).rejects.toMatchObject({
        code: "TE_ERR_NO_CUDA",
      });
      expect(() => new (loadBinding().DeviceTensor)(16)).toThrow(/CUDA/);
      await expect(cudaTensors.synchronize?.()).rejects.toMatchObject({ code: "TE_ERR_NO_CUDA" });
    },
  );

  test.runIf(info.devices.length > 0)("zero() clears on the device; synchronize resolves", async () => {
    const t = hostTensor("fp32", [300]);
    t.data.fill(7);
    const dev = await cudaTensors.fromHost(t);
    dev.buffer.zero();
    await cudaTensors.synchronize?.();
    expect([...(await cudaTensors.toHost(dev)).data].every((x) => x === 0)).toBe(true);
    cudaTensors.dispose(dev);
  });

  test.runIf(info.devices.length > 0)("upload and download round-trip, dispose frees at once", async () => {
    const t = hostTensor("fp32", [1000]);
    for (let i = 0; i < t.data.length; i++) t.data[i] = Math.random();
    const dev = await cudaTensors.fromHost(t);
    const back = await cudaTensors.toHost(dev);
    expect([...back.data]).toEqual([...t.data]);
    cudaTensors.dispose(dev);
    expect(dev.buffer.disposed).toBe(true);
    expect(() => dev.buffer.download(new Float32Array(1000))).toThrow(/disposed/);
  });
});
