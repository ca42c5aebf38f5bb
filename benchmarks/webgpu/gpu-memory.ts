/**
 * Counts the bytes of GPU buffers a device has created and not yet destroyed, and their peak since a mark.
 * WebGPU has no memory query, so the device's createBuffer and each created buffer's destroy are wrapped
 * (as own properties: Dawn's prototype methods need not be writable). Buffers dropped without destroy stay
 * counted, which is the conservative side for a peak.
 */
export interface GpuMemoryCounter {
  /** Bytes currently held. */
  live(): number;
  /** Starts a peak measurement at the bytes held now. */
  startPeak(): void;
  /** The most bytes held beyond the mark since startPeak. */
  peakSinceStart(): number;
}

export function countGpuMemory(device: GPUDevice): GpuMemoryCounter {
  let live = 0;
  let mark = 0;
  let peak = 0;
  const create = device.createBuffer.bind(device);
  Object.defineProperty(device, "createBuffer", {
    configurable: true,
    value: (descriptor: GPUBufferDescriptor) => {
      const buffer = create(descriptor);
      const size = descriptor.size;
      live += size;
      peak = Math.max(peak, live);
      const destroy = buffer.destroy.bind(buffer);
      let destroyed = false;
      Object.defineProperty(buffer, "destroy", {
        configurable: true,
        value: () => {
          if (!destroyed) live -= size;
          destroyed = true;
          destroy();
        },
      });
      return buffer;
    },
  });
  return {
    live: () => live,
    startPeak: () => {
      mark = live;
      peak = live;
    },
    peakSinceStart: () => peak - mark,
  };
}
