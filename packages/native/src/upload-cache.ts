import type { NativeBinding, NativeDeviceTensor } from "./binding.js";

/**
 * Device copies of the small host arrays a call passes (cu_seqlens, ALiBi slopes), reused while their
 * content is the same. An upload is a cudaMemcpy from pageable memory, which first waits for all work
 * queued on the device: one per call would make every padded or ALiBi call wait for the GPU to drain
 * before its kernels are even queued. Successive calls (the layers of one step) pass the same lengths,
 * so the copy made for the first one serves the rest.
 *
 * The kernels only read these arrays. Entries are kept for the `capacity` most recently used contents;
 * an evicted copy is disposed, which the device orders after every kernel queued before (stream-ordered
 * free), so a call still in flight keeps reading valid memory.
 */
export class UploadCache {
  /** Arrays above this size (arbitrary masks) are not worth keying by content: uploaded per call. */
  static readonly maxBytes = 16 * 1024;
  private readonly entries = new Map<string, NativeDeviceTensor>();

  constructor(
    private readonly binding: NativeBinding,
    private readonly capacity = 64,
  ) {}

  /** Whether `a` is small enough to be cached. */
  static fits(a: ArrayBufferView): boolean {
    return a.byteLength <= UploadCache.maxBytes;
  }

  /** The device copy of `a` (owned by the cache: callers never dispose it). */
  get(a: ArrayBufferView): NativeDeviceTensor {
    // The element type is part of the key: the same bytes as Int32 lengths or Float32 slopes differ.
    const bytes = Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("latin1");
    const key = `${a.constructor.name}:${bytes}`;
    const hit = this.entries.get(key);
    if (hit && !hit.disposed) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const t = new this.binding.DeviceTensor(Math.max(a.byteLength, 4), 0);
    try {
      if (a.byteLength > 0) t.upload(a);
    } catch (e) {
      t.dispose();
      throw e;
    }
    this.entries.set(key, t);
    if (this.entries.size > this.capacity) {
      const [oldest, evicted] = this.entries.entries().next().value as [string, NativeDeviceTensor];
      this.entries.delete(oldest);
      evicted.dispose();
    }
    return t;
  }

  /** Frees every cached copy. */
  clear(): void {
    for (const t of this.entries.values()) t.dispose();
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
