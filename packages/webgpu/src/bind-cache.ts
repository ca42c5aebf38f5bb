/**
 * Reuse of what runPrograms creates per dispatch: uniform buffers (by their bytes) and bind groups (by pipeline
 * and buffers). A call repeated on the same shapes and tensors (a training or decode loop; outputs come back from
 * the buffer pool as the same buffers) then creates neither: each Dawn object costs tens of microseconds of host
 * time in Node, and a forward's few dispatches were about half of its host time on the H200 (benchmarks/results/
 * webgpu-subgroup-matrix-h200, round 6). Entries are dropped least recently used first and never destroyed here:
 * a dropped uniform buffer may still be in a cached or submitted bind group, which keeps it alive as long as that
 * needs it. A cached bind group only matches calls that pass the very same buffer objects, which are alive then.
 */

const ENTRIES = 256;

interface Caches {
  readonly uniforms: Map<string, GPUBuffer>;
  readonly bindGroups: Map<string, GPUBindGroup>;
}

const caches = new WeakMap<GPUDevice, Caches>();
const ids = new WeakMap<object, number>();
let nextId = 1;

function cachesOf(device: GPUDevice): Caches {
  let c = caches.get(device);
  if (!c) {
    c = { uniforms: new Map(), bindGroups: new Map() };
    caches.set(device, c);
  }
  return c;
}

/** A process-wide number for an object (buffers, layouts), for cache keys. */
function idOf(o: object): number {
  let id = ids.get(o);
  if (id === undefined) {
    id = nextId++;
    ids.set(o, id);
  }
  return id;
}

/** The entry of `key`, made by `make` on a miss; the map keeps insertion order as recency. */
function lookup<T>(map: Map<string, T>, key: string, make: () => T): T {
  const hit = map.get(key);
  if (hit !== undefined) {
    map.delete(key);
    map.set(key, hit);
    return hit;
  }
  const made = make();
  map.set(key, made);
  if (map.size > ENTRIES) map.delete(map.keys().next().value as string);
  return made;
}

/** A uniform buffer holding `data` (written once, never changed). */
export function cachedUniformBuffer(device: GPUDevice, label: string, data: ArrayBuffer): GPUBuffer {
  const key = new Uint32Array(data).join(",");
  return lookup(cachesOf(device).uniforms, key, () => {
    const buffer = device.createBuffer({
      label,
      size: data.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(buffer, 0, data);
    return buffer;
  });
}

/** The bind group of `layout` with the uniform buffer at binding 0 and `buffers` (whole) at 1, 2, ... */
export function cachedBindGroup(
  device: GPUDevice,
  label: string,
  layout: GPUBindGroupLayout,
  uniforms: GPUBuffer,
  buffers: readonly GPUBuffer[],
): GPUBindGroup {
  const key = [layout, uniforms, ...buffers].map(idOf).join(",");
  return lookup(cachesOf(device).bindGroups, key, () =>
    device.createBindGroup({
      label,
      layout,
      entries: [
        { binding: 0, resource: { buffer: uniforms } },
        ...buffers.map((buffer, i) => ({ binding: i + 1, resource: { buffer } })),
      ],
    }),
  );
}
