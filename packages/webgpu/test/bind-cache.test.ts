/** bind-cache.ts: uniform buffers by bytes and bind groups by buffers, made once and dropped oldest first. */
import { describe, expect, it } from "vitest";
import { cachedBindGroup, cachedUniformBuffer } from "../src/bind-cache.js";

// The cache reads the usage flags of WebGPU's globals, which only the `webgpu` package (device.ts) installs.
(globalThis as { GPUBufferUsage?: object }).GPUBufferUsage ??= { COPY_DST: 0x8, UNIFORM: 0x40 };

function fakeDevice() {
  const made = { buffers: 0, writes: 0, bindGroups: 0 };
  const device = {
    createBuffer: ({ size }: { size: number }) => ({ size, id: made.buffers++ }),
    createBindGroup: (d: object) => ({ ...d, id: made.bindGroups++ }),
    queue: { writeBuffer: () => made.writes++ },
  } as unknown as GPUDevice;
  return { device, made };
}

const bytes = (...words: number[]) => new Uint32Array(words).buffer;

describe("bind cache", () => {
  it("makes and writes one uniform buffer per content, and makes another once the first was dropped", () => {
    const { device, made } = fakeDevice();
    const a = cachedUniformBuffer(device, "a", bytes(1, 2, 3, 4));
    expect(cachedUniformBuffer(device, "a again", bytes(1, 2, 3, 4))).toBe(a);
    expect(cachedUniformBuffer(device, "b", bytes(1, 2, 3, 5))).not.toBe(a);
    expect(made).toMatchObject({ buffers: 2, writes: 2 });
    for (let i = 0; i < 256; i++) cachedUniformBuffer(device, "filler", bytes(9, 9, 9, i));
    expect(cachedUniformBuffer(device, "a after", bytes(1, 2, 3, 4))).not.toBe(a);
  });

  it("keeps a bind group per layout, uniform buffer and buffers, in order", () => {
    const { device, made } = fakeDevice();
    const layout = {} as GPUBindGroupLayout;
    const [u, x, y] = [{}, {}, {}] as GPUBuffer[];
    const g = cachedBindGroup(device, "g", layout, u, [x, y]);
    expect(cachedBindGroup(device, "g", layout, u, [x, y])).toBe(g);
    expect(cachedBindGroup(device, "g", layout, u, [y, x])).not.toBe(g);
    expect(cachedBindGroup(device, "g", {} as GPUBindGroupLayout, u, [x, y])).not.toBe(g);
    expect(made.bindGroups).toBe(3);
  });
});
