/**
 * Reuse of the calls' internal storage buffers per device. Creating and destroying a buffer too large for
 * Dawn's sub-allocation (an 8 MiB one) cost 0.54 ms of host time on the H200 against 0.02 ms to clear a kept
 * one (scripts/gpu/webgpu-tuning/host-overhead.mjs): a forward's f32 output scratch alone was a quarter of a
 * call's host time at b2 h16 s2048 d64. A recycled buffer may go to a later call at once: the queue runs that
 * call's work after what was submitted on it before. Its contents are stale: callers clear it where the
 * programs rely on zeros. The pool keeps a few buffers per size, up to POOL_BYTES in all, destroying the rest.
 */
import { USAGE_STORAGE } from "./attention-call.js";

const PER_SIZE = 2;
const POOL_BYTES = 256 * 2 ** 20;

interface Pool {
  readonly free: Map<number, GPUBuffer[]>;
  bytes: number;
}

const pools = new WeakMap<GPUDevice, Pool>();

function poolOf(device: GPUDevice): Pool {
  let pool = pools.get(device);
  if (!pool) {
    pool = { free: new Map(), bytes: 0 };
    pools.set(device, pool);
  }
  return pool;
}

/** A storage buffer of `bytes` (STORAGE | COPY_SRC | COPY_DST), from the pool where one of that size is free. */
export function pooledBuffer(device: GPUDevice, bytes: number, label: string): GPUBuffer {
  const size = Math.max(4, bytes);
  const pool = poolOf(device);
  const buffer = pool.free.get(size)?.pop();
  if (buffer) {
    pool.bytes -= size;
    buffer.label = label;
    return buffer;
  }
  return device.createBuffer({ label, size, usage: USAGE_STORAGE() });
}

/** Gives a pooledBuffer back (the caller no longer uses it; work already submitted on it may still run). */
export function recycleBuffer(device: GPUDevice, buffer: GPUBuffer): void {
  const pool = poolOf(device);
  const list = pool.free.get(buffer.size) ?? [];
  if (list.includes(buffer)) return;
  if (list.length >= PER_SIZE || pool.bytes + buffer.size > POOL_BYTES) {
    buffer.destroy();
    return;
  }
  list.push(buffer);
  pool.free.set(buffer.size, list);
  pool.bytes += buffer.size;
}

/** Destroys the buffers the pool keeps for `device` (such as before measuring a call's memory). */
export function releasePooledBuffers(device: GPUDevice): void {
  const pool = pools.get(device);
  if (!pool) return;
  for (const list of pool.free.values()) for (const buffer of list) buffer.destroy();
  pools.delete(device);
}
