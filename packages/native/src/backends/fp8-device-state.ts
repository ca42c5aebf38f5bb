import {
  ArgumentError,
  attachFp8DeviceState,
  type DelayedScaling,
  FP8_BACKWARD_TENSORS,
  FP8_FORWARD_TENSORS,
  type Fp8DeviceState,
  type Fp8MetaState,
  type Fp8TensorName,
  fp8DeviceStateOf,
  releaseFp8Meta,
} from "@te/core";
import type { NativeBinding, NativeDeviceTensor } from "../binding.js";

/**
 * cuda.cudnn's device copy of a DelayedScaling state (TE's fp8_meta on the GPU): the state in the
 * layout of native/cudnn/fp8_recipe_state.h, uploaded once when the backend adopts a state, and a pool
 * of per-call scaling blocks (fp8_attention.h's TE_FP8_META_FLOATS floats). A call fills its block
 * from the state (fp8StatePrepare), the casts and graphs read scales from it and write amaxes into it,
 * and fp8StateRecord records them into the state; the module's scale update runs fp8StateUpdate. All of
 * it is queued on the device's stream: nothing waits for the device, nothing is copied per call.
 * The forward's block stays with its saved state until backward (whose descales of the saved FP8
 * tensors are the forward's), then goes back to the pool.
 *
 * Freed by dispose() (core's releaseFp8Meta, DotProductAttention.dispose()); a state dropped without
 * it is freed by the DeviceTensors' own finalizers once the state (the WeakMap key holding this) is
 * collected.
 */

/** te_fp8_format of the C API. */
export const FORMAT_CODE = { fp8e4m3: 0, fp8e5m2: 1 } as const;
/** te_fp8_tensor: core's FP8_FORWARD_TENSORS then FP8_BACKWARD_TENSORS. */
export const FP8_TENSORS: readonly Fp8TensorName[] = [...FP8_FORWARD_TENSORS, ...FP8_BACKWARD_TENSORS];
export const slotOf = (t: Fp8TensorName): number => FP8_TENSORS.indexOf(t);
/** TE_FP8_META_FLOATS: scale, scale_inv, amax of each tensor. */
export const META_FLOATS = 3 * FP8_TENSORS.length;
/** TE_FP8_STATE_HISTORY_BYTE and TE_FP8_STATE_BYTES(len). */
const HISTORY_BYTE = 2 * FP8_TENSORS.length * 8;
export const fp8StateBytes = (historyLen: number): number =>
  HISTORY_BYTE + 4 * FP8_TENSORS.length * historyLen;
const PASS_CODE = { forward: 0, backward: 1 } as const;

/** The addon's recipe-state entry points (src/addon/fp8_binding.cpp). */
export interface Fp8StateBinding {
  fp8StatePrepare(
    state: NativeDeviceTensor,
    historyLen: number,
    fwdFormat: number,
    pass: number,
    meta: NativeDeviceTensor,
  ): void;
  fp8StateRecord(
    state: NativeDeviceTensor,
    historyLen: number,
    meta: NativeDeviceTensor,
    tensors: number,
  ): void;
  fp8StateUpdate(
    state: NativeDeviceTensor,
    historyLen: number,
    fwdFormat: number,
    bwdFormat: number,
    pass: number,
    algo: number,
    marginScale: number,
  ): void;
}

export const hasFp8StateBinding = (b: NativeBinding): b is NativeBinding & Fp8StateBinding =>
  typeof (b as Partial<Fp8StateBinding>).fp8StateUpdate === "function";

/** A host record's history length and formats, checked to be what the device layout can hold. */
function shapeOf(state: Fp8MetaState): { historyLen: number; fwd: number; bwd: number } {
  const historyLen = state.q?.amaxHistory?.length;
  if (!Number.isInteger(historyLen) || historyLen < 1)
    throw new ArgumentError("fp8Meta.q.amaxHistory", "a history of at least one entry", historyLen);
  const fwdDtype = state.q.dtype;
  const bwdDtype = state.dO?.dtype;
  for (const t of FP8_TENSORS) {
    const e = state[t];
    if (e === undefined) throw new ArgumentError(`fp8Meta.${t}`, "an Fp8TensorMeta (createFp8Meta)", e);
    if (e.amaxHistory.length !== historyLen)
      throw new ArgumentError(
        `fp8Meta.${t}.amaxHistory`,
        `${historyLen} entries, as q's`,
        e.amaxHistory.length,
      );
    const want = (FP8_FORWARD_TENSORS as readonly string[]).includes(t) ? fwdDtype : bwdDtype;
    if (e.dtype !== want)
      throw new ArgumentError(`fp8Meta.${t}.dtype`, `${want}, as the pass's first tensor`, e.dtype);
    if (!(e.dtype in FORMAT_CODE))
      throw new ArgumentError(`fp8Meta.${t}.dtype`, "fp8e4m3 or fp8e5m2", e.dtype);
  }
  return { historyLen, fwd: FORMAT_CODE[fwdDtype], bwd: FORMAT_CODE[bwdDtype] };
}

/** The host record in the device layout (scales and scale_invs as doubles, histories as fp32). */
export function encodeFp8State(state: Fp8MetaState, historyLen: number): Uint8Array {
  const bytes = new Uint8Array(fp8StateBytes(historyLen));
  const scales = new Float64Array(bytes.buffer, 0, 2 * FP8_TENSORS.length);
  const histories = new Float32Array(bytes.buffer, HISTORY_BYTE, FP8_TENSORS.length * historyLen);
  FP8_TENSORS.forEach((t, i) => {
    scales[i] = state[t].scale;
    scales[FP8_TENSORS.length + i] = state[t].scaleInv;
    histories.set(state[t].amaxHistory, i * historyLen);
  });
  return bytes;
}

/** The device layout's values into a host record. */
export function decodeFp8State(bytes: Uint8Array, historyLen: number, into: Fp8MetaState): void {
  const scales = new Float64Array(bytes.buffer, bytes.byteOffset, 2 * FP8_TENSORS.length);
  const histories = new Float32Array(
    bytes.buffer,
    bytes.byteOffset + HISTORY_BYTE,
    FP8_TENSORS.length * historyLen,
  );
  FP8_TENSORS.forEach((t, i) => {
    into[t].scale = scales[i];
    into[t].scaleInv = scales[FP8_TENSORS.length + i];
    into[t].amaxHistory.set(histories.subarray(i * historyLen, (i + 1) * historyLen));
  });
}

/** amax_compute_algo on the device: te_fp8_amax_algo, or null for a function (host only). */
const algoCode = (r: DelayedScaling): number | null =>
  r.amaxComputeAlgo === "max" ? 0 : r.amaxComputeAlgo === "most_recent" ? 1 : null;

export class DeviceFp8State implements Fp8DeviceState {
  readonly historyLen: number;
  /** te_fp8_format of the forward and backward tensors. */
  readonly formats: { readonly fwd: number; readonly bwd: number };
  private readonly state: NativeDeviceTensor;
  private readonly pool: NativeDeviceTensor[] = [];
  private disposed = false;

  constructor(
    readonly binding: NativeBinding & Fp8StateBinding,
    readonly owner: string,
    host: Fp8MetaState,
  ) {
    const { historyLen, fwd, bwd } = shapeOf(host);
    this.historyLen = historyLen;
    this.formats = { fwd, bwd };
    this.state = new binding.DeviceTensor(fp8StateBytes(historyLen), 0);
    try {
      this.state.upload(encodeFp8State(host, historyLen));
    } catch (e) {
      this.state.dispose();
      throw e;
    }
  }

  private live(): NativeDeviceTensor {
    if (this.disposed) throw new Error("the device copy of the FP8 state was disposed");
    return this.state;
  }

  update(recipe: DelayedScaling, pass: "forward" | "backward" | "both"): boolean {
    const algo = algoCode(recipe);
    // Custom JS algos (an amax function, scaling_factor_compute_algo) run on the host only.
    if (algo === null || recipe.scalingFactorComputeAlgo !== undefined) return false;
    const passes = pass === "both" ? (["forward", "backward"] as const) : [pass];
    for (const ps of passes) {
      this.binding.fp8StateUpdate(
        this.live(),
        this.historyLen,
        this.formats.fwd,
        this.formats.bwd,
        PASS_CODE[ps],
        algo,
        2 ** recipe.margin, // as core computes it, so the device divides by the same double
      );
    }
    return true;
  }

  download(into: Fp8MetaState): void {
    const bytes = new Uint8Array(fp8StateBytes(this.historyLen));
    this.live().download(bytes);
    decodeFp8State(bytes, this.historyLen, into);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.state.dispose();
    for (const b of this.pool) b.dispose();
    this.pool.length = 0;
  }

  /** A scaling block for one call (and its backward), from the pool. */
  takeBlock(): NativeDeviceTensor {
    this.live();
    return this.pool.pop() ?? new this.binding.DeviceTensor(4 * META_FLOATS, 0);
  }

  /** Back to the pool (freed if this copy was disposed meanwhile). Queued work on it stays ordered. */
  giveBlock(block: NativeDeviceTensor): void {
    if (this.disposed || block.disposed) block.dispose();
    else this.pool.push(block);
  }

  /** The pass's slots of block from the current state (scales; amaxes zeroed). */
  prepare(block: NativeDeviceTensor, pass: "forward" | "backward"): void {
    this.binding.fp8StatePrepare(this.live(), this.historyLen, this.formats.fwd, PASS_CODE[pass], block);
  }

  /** Records block's amaxes of `tensors` into this step's history (core's recordSharedAmax). */
  record(block: NativeDeviceTensor, tensors: readonly Fp8TensorName[]): void {
    const bits = tensors.reduce((m, t) => m | (1 << slotOf(t)), 0);
    this.binding.fp8StateRecord(this.live(), this.historyLen, block, bits);
  }
}

/** The device copy of a state this backend holds, or a new one (uploaded) that core then knows of. */
export function deviceStateFor(
  binding: NativeBinding & Fp8StateBinding,
  owner: string,
  state: Fp8MetaState,
): DeviceFp8State {
  const held = fp8DeviceStateOf(state);
  if (held instanceof DeviceFp8State && held.owner === owner && held.binding === binding) return held;
  if (held !== undefined) releaseFp8Meta(state); // another holder hands it back first
  const device = new DeviceFp8State(binding, owner, state);
  attachFp8DeviceState(state, device);
  return device;
}
