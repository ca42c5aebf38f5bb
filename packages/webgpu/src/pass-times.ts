/**
 * GPU time of the compute passes that runPrograms encodes, for benchmarks and profiling: while a recording is
 * open on a device, every pass gets timestamp writes (the device needs the "timestamp-query" feature, which
 * getDevice requests where the adapter has it; Dawn quantizes timestamps unless its allow_unsafe_apis toggle
 * is on). Passes beyond the recording's capacity run untimed and are counted as such.
 * A pass's start is written when the GPU reaches it, which can be before the work ahead of it is done: on
 * the H200's Vulkan driver the passes of calls submitted back to back overlapped that way, so that their sum
 * exceeded the wall time. Time one call at a time and take its span (last end - first start) for a call's time.
 */

interface Recording {
  readonly querySet: GPUQuerySet;
  readonly capacity: number;
  readonly names: string[];
  untimed: number;
}

export interface PassTime {
  /** The program's name. */
  readonly name: string;
  /** When the pass began and ended, in ms from the recording's first timestamp, and the difference. */
  readonly start: number;
  readonly end: number;
  readonly ms: number;
}

const recordings = new WeakMap<GPUDevice, Recording>();

/** Starts timing the next `passes` compute passes on `device` (replacing an open recording). */
export function recordPassTimes(device: GPUDevice, passes: number): void {
  if (!device.features.has("timestamp-query"))
    throw new Error('recordPassTimes: the device lacks the "timestamp-query" feature');
  if (!Number.isInteger(passes) || passes < 1 || passes > 2048)
    throw new Error(`recordPassTimes: passes must be an integer from 1 to 2048, got ${passes}`);
  recordings.get(device)?.querySet.destroy();
  const querySet = device.createQuerySet({ type: "timestamp", count: 2 * passes });
  recordings.set(device, { querySet, capacity: passes, names: [], untimed: 0 });
}

/** The timestamp writes of the next pass of `program` on `device`, if a recording with room is open. */
export function passTimestampWrites(
  device: GPUDevice,
  program: string,
): GPUComputePassTimestampWrites | null {
  const recording = recordings.get(device);
  if (!recording) return null;
  const index = recording.names.length;
  if (index === recording.capacity) {
    recording.untimed++;
    return null;
  }
  recording.names.push(program);
  return {
    querySet: recording.querySet,
    beginningOfPassWriteIndex: 2 * index,
    endOfPassWriteIndex: 2 * index + 1,
  };
}

/** Ends the recording on `device`: each timed pass's GPU time, once the work submitted so far is done. */
export async function finishPassTimes(device: GPUDevice): Promise<{ passes: PassTime[]; untimed: number }> {
  const recording = recordings.get(device);
  if (!recording)
    throw new Error("finishPassTimes: no recording is open on this device (recordPassTimes first)");
  recordings.delete(device);
  const { querySet, names, untimed } = recording;
  const bytes = Math.max(16, names.length * 16);
  const resolved = device.createBuffer({
    size: bytes,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const readback = device.createBuffer({
    size: bytes,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  try {
    if (names.length > 0) {
      const encoder = device.createCommandEncoder();
      encoder.resolveQuerySet(querySet, 0, 2 * names.length, resolved, 0);
      encoder.copyBufferToBuffer(resolved, 0, readback, 0, bytes);
      device.queue.submit([encoder.finish()]);
    }
    await readback.mapAsync(GPUMapMode.READ);
    const stamps = new BigInt64Array(readback.getMappedRange().slice(0));
    readback.unmap();
    const at = (i: number) => Number(stamps[i] - stamps[0]) / 1e6;
    const passes = names.map((name, i) => {
      const [start, end] = [at(2 * i), at(2 * i + 1)];
      return { name, start, end, ms: end - start };
    });
    return { passes, untimed };
  } finally {
    querySet.destroy();
    resolved.destroy();
    readback.destroy();
  }
}
