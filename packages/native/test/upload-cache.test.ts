import { makeParams } from "@te/core";
import { describe, expect, it } from "vitest";
import { createCudaBackend } from "../src/backends/cuda-backend.js";
import type { NativeBinding, NativeDeviceTensor } from "../src/binding.js";
import type { CudaTensor } from "../src/device.js";
import { UploadCache } from "../src/upload-cache.js";

/** A fake device that counts uploads and downloads and records the argument blocks enqueued. */
function fakeDevice() {
  const counts = { uploads: 0, downloads: 0 };
  const blocks: Record<string, unknown>[] = [];
  class FakeDeviceTensor implements NativeDeviceTensor {
    disposed = false;
    constructor(
      readonly byteLength: number,
      readonly device = 0,
    ) {}
    upload(): void {
      counts.uploads++;
    }
    download<A extends ArrayBufferView>(dst: A): A {
      counts.downloads++;
      return dst;
    }
    zero(): NativeDeviceTensor {
      return this;
    }
    dispose(): void {
      this.disposed = true;
    }
  }
  const binding: NativeBinding = {
    explain: () => "",
    forward: async () => undefined,
    backward: async () => undefined,
    enqueueForward: (_backend, _desc, args) => {
      blocks.push(args as unknown as Record<string, unknown>);
    },
    enqueueBackward: () => undefined,
    externalMemory: () => ({ liveBytes: 0, reportedBytes: 0 }),
    backends: () => "cuda.flash",
    deviceInfo: () => ({ cudaCompiled: true, devices: [] }),
    philox: (c) => c,
    DeviceTensor: FakeDeviceTensor,
    synchronize: async () => undefined,
  };
  const tensor = (shape: number[], dtype: CudaTensor["dtype"] = "bf16"): CudaTensor => {
    const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
    const n = shape.reduce((a, b) => a * b, 1);
    return { dtype, shape, strides, offset: 0, buffer: new FakeDeviceTensor(n * 4) };
  };
  return { binding, counts, blocks, tensor };
}

describe("UploadCache: device copies of small host arrays, by content", () => {
  it("one upload per content and element type; the least recently used copy is evicted and disposed", () => {
    const dev = fakeDevice();
    const cache = new UploadCache(dev.binding, 2);
    const a = cache.get(Int32Array.from([0, 100, 228]));
    expect(cache.get(Int32Array.from([0, 100, 228]))).toBe(a);
    expect(dev.counts.uploads).toBe(1);
    const asFloats = cache.get(new Float32Array(Int32Array.from([0, 100, 228]).buffer));
    expect(asFloats).not.toBe(a);
    expect(cache.get(Int32Array.from([0, 100, 228]))).toBe(a); // a is now the most recent
    const c = cache.get(Int32Array.from([0, 1, 2]));
    expect(asFloats.disposed).toBe(true);
    expect(a.disposed).toBe(false);
    expect(cache.size).toBe(2);
    expect(dev.counts.uploads).toBe(3);
    cache.clear();
    expect(a.disposed && c.disposed).toBe(true);
  });

  it("a view is keyed by its own bytes, not by the rest of its buffer", () => {
    const dev = fakeDevice();
    const cache = new UploadCache(dev.binding);
    const whole = Int32Array.from([7, 0, 5, 9]);
    expect(cache.get(whole.subarray(1, 3))).toBe(cache.get(Int32Array.from([0, 5])));
    expect(dev.counts.uploads).toBe(1);
    expect(UploadCache.fits(new Uint8Array(UploadCache.maxBytes + 1))).toBe(false);
  });
});

describe("cuda.* calls reuse the device copies of cu_seqlens", () => {
  it("padded calls with the same lengths upload them once and never dispose the shared copy", async () => {
    const dev = fakeDevice();
    const flash = createCudaBackend(dev.binding, "cuda.flash");
    const p = makeParams({ b: 2, h: 4, d: 64, sq: 128, dtype: "bf16", device: "cuda", maskType: "padding" });
    const [q, k, v] = [0, 1, 2].map(() => dev.tensor([2, 128, 4, 64]));
    const lengths = () => ({
      cuSeqlensQ: Int32Array.from([0, 100, 228]),
      cuSeqlensKv: Int32Array.from([0, 90, 200]),
    });
    await flash.forward({ q, k, v, ...lengths() }, p);
    expect(dev.counts.uploads).toBe(2);
    await flash.forward({ q, k, v, ...lengths() }, p);
    expect(dev.counts.uploads).toBe(2);
    const [first, second] = dev.blocks;
    expect(second.cuSeqlensQ).toBe(first.cuSeqlensQ);
    expect((second.cuSeqlensKv as NativeDeviceTensor).disposed).toBe(false);
    await flash.forward(
      { q, k, v, cuSeqlensQ: Int32Array.from([0, 128, 256]), cuSeqlensKv: lengths().cuSeqlensKv },
      p,
    );
    expect(dev.counts.uploads).toBe(3);
  });

  it("an fp32 softmax offset is read in place (no download), another dtype is converted on the host", async () => {
    const dev = fakeDevice();
    const flash = createCudaBackend(dev.binding, "cuda.flash");
    const p = makeParams({
      b: 2,
      h: 4,
      d: 64,
      sq: 128,
      dtype: "bf16",
      device: "cuda",
      softmaxType: "learnable",
    });
    const [q, k, v] = [0, 1, 2].map(() => dev.tensor([2, 128, 4, 64]));
    const offset32 = dev.tensor([1, 4, 1, 1], "fp32");
    await flash.forward({ q, k, v, softmaxOffset: offset32 }, p);
    expect(dev.counts.downloads).toBe(0);
    expect(dev.blocks[0].softmaxOffset).toBe(offset32.buffer);
    await flash.forward({ q, k, v, softmaxOffset: dev.tensor([1, 4, 1, 1], "bf16") }, p);
    expect(dev.counts.downloads).toBe(1);
    expect(dev.blocks[1].softmaxOffset).not.toBe(offset32.buffer);
  });
});
