/** buffer-pool.ts: what comes back out of the pool, what it keeps and what it destroys. */
import { describe, expect, it } from "vitest";
import {
  pooledBuffer,
  recycleBuffer,
  releasePooledBuffers,
  takePendingClears,
  zeroedBuffer,
} from "../src/buffer-pool.js";

// The pool reads the usage flags of WebGPU's globals, which only the `webgpu` package (device.ts) installs.
(globalThis as { GPUBufferUsage?: object }).GPUBufferUsage ??= {
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  STORAGE: 0x80,
};

interface FakeBuffer {
  size: number;
  label: string;
  destroyed: boolean;
  destroy(): void;
}

function fakeDevice(): { device: GPUDevice; created: FakeBuffer[] } {
  const created: FakeBuffer[] = [];
  const device = {
    createBuffer({ size, label }: { size: number; label: string }) {
      const buffer: FakeBuffer = {
        size,
        label,
        destroyed: false,
        destroy() {
          this.destroyed = true;
        },
      };
      created.push(buffer);
      return buffer;
    },
  } as unknown as GPUDevice;
  return { device, created };
}

describe("buffer pool", () => {
  it("hands a recycled buffer of the same size out again, relabelled, and creates others", () => {
    const { device, created } = fakeDevice();
    const a = pooledBuffer(device, 1024, "first");
    recycleBuffer(a);
    recycleBuffer(a);
    expect(pooledBuffer(device, 1024, "second")).toBe(a);
    expect(a.label).toBe("second");
    expect(pooledBuffer(device, 1024, "third")).not.toBe(a);
    expect(pooledBuffer(device, 2048, "other size").size).toBe(2048);
    expect(created).toHaveLength(3);
  });

  it("keeps two free buffers per size and destroys the rest, and releasePooledBuffers destroys what it keeps", () => {
    const { device } = fakeDevice();
    const buffers = [0, 1, 2].map(() => pooledBuffer(device, 64, "b"));
    for (const b of buffers) recycleBuffer(b);
    const fake = buffers as unknown as FakeBuffer[];
    expect(fake.map((b) => b.destroyed)).toEqual([false, false, true]);
    releasePooledBuffers(device);
    expect(fake.every((b) => b.destroyed)).toBe(true);
    expect(pooledBuffer(device, 64, "fresh")).not.toBe(buffers[1]);
  });

  it("destroys instead of keeping past its byte budget", () => {
    const { device } = fakeDevice();
    const big = [0, 1].map(() => pooledBuffer(device, 200 * 2 ** 20, "big"));
    for (const b of big) recycleBuffer(b);
    expect((big as unknown as FakeBuffer[]).map((b) => b.destroyed)).toEqual([false, true]);
  });

  it("destroys a buffer it did not make instead of keeping it", () => {
    const { device } = fakeDevice();
    const foreign = device.createBuffer({ size: 64, label: "caller's" } as GPUBufferDescriptor);
    recycleBuffer(foreign);
    expect((foreign as unknown as FakeBuffer).destroyed).toBe(true);
    expect(pooledBuffer(device, 64, "pooled")).not.toBe(foreign);
  });

  it("hands each zeroedBuffer to the next submission's clears once, recycled ones included", () => {
    const { device } = fakeDevice();
    const a = zeroedBuffer(device, 256, "a");
    const b = zeroedBuffer(device, 512, "b");
    expect(takePendingClears(device)).toEqual([a, b]);
    expect(takePendingClears(device)).toEqual([]);
    recycleBuffer(a);
    const again = zeroedBuffer(device, 256, "again");
    expect(again).toBe(a);
    expect(takePendingClears(device)).toEqual([a]);
  });
});
