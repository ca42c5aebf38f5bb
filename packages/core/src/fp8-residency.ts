import type { DelayedScaling, Fp8MetaState, Fp8TensorMeta } from "./fp8.js";

/**
 * Where a DelayedScaling state lives. An Fp8MetaState is host data (fp8.ts) until a backend that
 * keeps it in device memory adopts it (cuda.cudnn's FP8 path, as TE keeps fp8_meta on the GPU): from
 * then on the device copy is the state, every call records into it and the scale updates run there
 * without a host copy, and the host record is stale until it is read back.
 *
 * - readFp8Meta(state): downloads the device copy into the host record (waits for queued work) and
 *   returns it; the device keeps owning the state. Read before inspecting scales or histories.
 * - releaseFp8Meta(state): downloads it and frees the device copy; the host record owns the state
 *   again (host edits take effect; the next device call uploads it afresh).
 * - The host recipe functions (recordAmax, recordSharedAmax, updateFp8Scale, the FP8 emulation)
 *   release a device-resident state before they touch it, so they always see the current values;
 *   updateAttentionFp8Scales / updateFp8Meta hand the update to the device copy instead when it can
 *   run it (amax_compute_algo "max" or "most_recent", TE's scale rule), and release it when it cannot
 *   (a function-valued algo runs on the host, at the cost of a download and an upload per update).
 *
 * The host functions stay the reference: a device copy must leave exactly the state they would
 * (for cuda.cudnn: native/cudnn/fp8_recipe_state.h, checked by native/cudnn/tests/fp8_node_check.mjs).
 */
export interface Fp8DeviceState {
  /** The backend that owns the device copy (its id). */
  readonly owner: string;
  /**
   * Queues TE's scale update of the pass's tensors on the device; false when the recipe asks for what
   * the device cannot compute (the caller then releases the state and updates it on the host).
   */
  update(recipe: DelayedScaling, pass: "forward" | "backward" | "both"): boolean;
  /** Writes the device copy's values into the host record (a synchronous download). */
  download(into: Fp8MetaState): void;
  /** Frees the device copy (no download). */
  dispose(): void;
}

const devices = new WeakMap<Fp8MetaState, Fp8DeviceState>();
/** Each entry's state, so that an entry-level function (recordAmax) can find a device owner. */
const stateOfEntry = new WeakMap<Fp8TensorMeta, Fp8MetaState>();

/** Hands a state to a device copy (a backend calls this once it uploaded the state). */
export function attachFp8DeviceState(state: Fp8MetaState, device: Fp8DeviceState): void {
  const held = devices.get(state);
  if (held && held !== device)
    throw new Error(`the FP8 state is already held on the device by ${held.owner}`);
  devices.set(state, device);
  for (const entry of Object.values(state)) stateOfEntry.set(entry, state);
}

/** The device copy that owns a state, if one does. */
export const fp8DeviceStateOf = (state: Fp8MetaState): Fp8DeviceState | undefined => devices.get(state);

/** The host record with the current values (downloaded when the device owns the state). */
export function readFp8Meta(state: Fp8MetaState): Fp8MetaState {
  devices.get(state)?.download(state);
  return state;
}

/** Downloads and frees a device copy; the host record owns the state again. Returns the state. */
export function releaseFp8Meta(state: Fp8MetaState): Fp8MetaState {
  const device = devices.get(state);
  if (device === undefined) return state;
  try {
    device.download(state);
  } finally {
    devices.delete(state);
    device.dispose();
  }
  return state;
}

/** releaseFp8Meta for the state an entry belongs to (host functions that get one entry). */
export function releaseFp8MetaOfEntry(entry: Fp8TensorMeta): void {
  const state = stateOfEntry.get(entry);
  if (state !== undefined && devices.has(state)) releaseFp8Meta(state);
}
