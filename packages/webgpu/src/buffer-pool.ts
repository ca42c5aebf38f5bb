/**
 * Reuse of the calls' internal storage buffers per device. Creating and destroying a buffer too large for
 * Dawn's sub-allocation (an 8 MiB one) cost 0.54 ms of host time on the H200 against 0.02 ms to clear a kept
 * one (scripts/gpu/webgpu-tuning/host-overhead.mjs): a forward's f32 output scratch alone was a quarter of a
 * call's host time at b2 h16 s2048 d64. A recycled buffer may go to a later call at once: the queue runs that
 * call's work after what was submitted on it before. Its contents are stale: callers clear it where the
 * programs rely on zeros. The pool keeps a few buffers per size, up to POOL_BYTES in all, destroying the rest.
 *
 * The calls' outputs come from the pool too: `disposeTensor` (and webgpuBridge.dispose) gives a pooled tensor's
 * buffer back, as tfjs's buffer manager reuses a disposed tensor's buffer, so a loop that disposes what it is
 * done with creates no buffers once warm. A buffer given back belongs to the pool: its tensor must not be used
 * (nor its buffer destroyed) afterwards.
 */
/** The usage of every storage buffer @te/webgpu creates (tensors, outputs, scratch). */
export const USAGE_STORAGE = (): number =>
  GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

const PER_SIZE = 2;
const POOL_BYTES = 256 * 2 ** 20;

interface Pool {
  readonly free: Map<number, GPUBuffer[]>;
  bytes: number;
}

const pools = new WeakMap<GPUDevice, Pool>();
/** The device of every buffer pooledBuffer created (only those go back into a pool). */
const origins = new WeakMap<GPUBuffer, GPUDevice>();

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
  const created = device.createBuffer({ label, size, usage: USAGE_STORAGE() });
  origins.set(created, device);
  return created;
}

const pendingClears = new WeakMap<GPUDevice, Set<GPUBuffer>>();

/**
 * A pooled buffer that reads as zeros in the next submission runPrograms makes on `device` (which clears it
 * first), as a new buffer would. Another call's submission may come first: its clear is then the one, which
 * is as good, since nothing else writes the buffer in between.
 */
export function zeroedBuffer(device: GPUDevice, bytes: number, label: string): GPUBuffer {
  const buffer = pooledBuffer(device, bytes, label);
  const pending = pendingClears.get(device) ?? new Set();
  pending.add(buffer);
  pendingClears.set(device, pending);
  return buffer;
}

/** The zeroedBuffers still to clear on `device`, handed over (runPrograms clears them). */
export function takePendingClears(device: GPUDevice): GPUBuffer[] {
  const pending = pendingClears.get(device);
  if (!pending) return [];
  pendingClears.delete(device);
  return [...pending];
}

/**
 * Gives a buffer back (the caller no longer uses it; work already submitted on it may still run): into its
 * device's pool if pooledBuffer made it, else it is destroyed.
 */
export function recycleBuffer(buffer: GPUBuffer): void {
  const device = origins.get(buffer);
  if (!device) {
    buffer.destroy();
    return;
  }
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
