/** The TE_WEBGPU_FLASH_TILES tuning override: taken when it fits the device, ignored otherwise. */
import { afterEach, describe, expect, it } from "vitest";
import { backwardOverride, forwardOverride } from "../src/flash/tile-override.js";

const device = {
  limits: { maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupStorageSize: 32768 },
} as unknown as GPUDevice;

const setTiles = (tiles: unknown) => {
  process.env.TE_WEBGPU_FLASH_TILES = typeof tiles === "string" ? tiles : JSON.stringify(tiles);
};

describe("TE_WEBGPU_FLASH_TILES", () => {
  afterEach(() => {
    delete process.env.TE_WEBGPU_FLASH_TILES;
  });

  it("is ignored when unset or malformed", () => {
    expect(forwardOverride(device, 64, 64, false)).toBeNull();
    setTiles("{not json");
    expect(forwardOverride(device, 64, 64, false)).toBeNull();
    setTiles({ forward: { bq: 48, bk: 16, tm: 2, sharedKv: false } });
    expect(forwardOverride(device, 64, 64, false)).toBeNull();
    setTiles({ dq: { r: 32, c: 8, tm: 2 } });
    expect(backwardOverride(device, "dq", 64, 64)).toBeNull();
  });

  it("gives a tile that fits the device's workgroup memory and threads", () => {
    setTiles({ forward: { bq: 32, bk: 16, tm: 2, sharedKv: false }, dkdv: { r: 16, c: 16, tm: 1 } });
    expect(forwardOverride(device, 64, 64, false)).toMatchObject({ bq: 32, bk: 16, tm: 2 });
    expect(backwardOverride(device, "dkdv", 64, 64)).toMatchObject({ r: 16, c: 16, tm: 1 });
    expect(backwardOverride(device, "dq", 64, 64)).toBeNull();
  });

  it("refuses tiles over the limits", () => {
    setTiles({ forward: { bq: 64, bk: 32, tm: 4, sharedKv: false }, dq: { r: 256, c: 16, tm: 1 } });
    // 40 KiB of workgroup memory at d64, over this device's 32 KiB; 1024 threads, over 256.
    expect(forwardOverride(device, 64, 64, false)).toBeNull();
    expect(backwardOverride(device, "dq", 64, 64)).toBeNull();
  });
});
