import {
  ArgumentError,
  type AttentionInputs,
  type AttentionParams,
  BackendError,
  createFp8Meta,
  delayedScaling,
  expectedShape,
  type Fp8MetaState,
  type Fp8TensorName,
  type Gradients,
  isFp8,
  isPadding,
  numel,
  type SavedForBackward,
} from "@te/core";
import type { NativeBinding, NativeDesc, NativeDeviceTensor } from "../binding.js";
import { allocateWith, type CudaTensor } from "../device.js";
import { DTYPE_CODE, nativeDesc } from "../native-desc.js";
import {
  type DeviceFp8State,
  deviceStateFor,
  FORMAT_CODE,
  type Fp8StateBinding,
  hasFp8StateBinding,
  slotOf,
} from "./fp8-device-state.js";

/**
 * FP8 attention of cuda.cudnn (TE's FusedAttention sub-backend 2, native/cudnn/fp8_attention.h) on
 * CUDA tensors, under TE's DelayedScaling recipe (core's fp8.ts / fp8-attention.ts):
 *
 * - fp8_dpa: F16/BF16 q, k, v are cast to FP8 at the edge with the shared QKV scale (their amax
 *   recorded), O comes back from FP8 with the O scale; fp8_mha: FP8 tensors in and out.
 * - The recipe's state lives on the device (fp8-device-state.ts, as TE keeps fp8_meta on the GPU): the
 *   first call uploads the Fp8MetaState, each call fills a pooled scaling block of TE_FP8_META_FLOATS
 *   floats from it on the device, the casts and graphs read it and write their amaxes into it, and a
 *   kernel records them with TE's shared q/k/v and dQ/dK/dV groups; the module's scale update (core's
 *   updateAttentionFp8Scales) runs on the device too. No call copies anything to or from the host, so
 *   none waits for the device. Host reads are explicit: core's readFp8Meta / releaseFp8Meta.
 * - The forward's block is kept with the saved state (as TE keeps the scale_invs in its context): the
 *   backward descales the saved FP8 q, k, v, O with it even after the forward scales moved on.
 * - NVTE_FP8_DPA_BWD=0 (p.fp8.backward false): backward in F16 through sub-backend 1 on the F16
 *   q, k, v and the dequantised O, with the forward's lse.
 */

type Fp8DType = keyof typeof FORMAT_CODE;
const isFp8Storage = (dtype: string): dtype is Fp8DType => dtype === "fp8e4m3" || dtype === "fp8e5m2";
const slot = slotOf;

/** The addon's FP8 entry points (src/addon/fp8_binding.cpp); absent from addons built before them. */
export interface Fp8Binding {
  fp8Explain(desc: NativeDesc, fwdFormat: number, bwdFormat: number, backward: boolean): string;
  fp8Forward(desc: NativeDesc, args: object, fwdFormat: number, meta: NativeDeviceTensor): void;
  fp8Backward(
    desc: NativeDesc,
    args: object,
    fwdFormat: number,
    bwdFormat: number,
    meta: NativeDeviceTensor,
  ): void;
  fp8Quantize(
    srcDtype: number,
    x: NativeDeviceTensor,
    xOffset: number,
    n: number,
    format: number,
    y: NativeDeviceTensor,
    yOffset: number,
    meta: NativeDeviceTensor,
    tensor: number,
  ): void;
  fp8Dequantize(
    format: number,
    x: NativeDeviceTensor,
    xOffset: number,
    n: number,
    dstDtype: number,
    y: NativeDeviceTensor,
    meta: NativeDeviceTensor,
    tensor: number,
  ): void;
}

export const hasFp8Binding = (b: NativeBinding): b is NativeBinding & Fp8Binding & Fp8StateBinding =>
  typeof (b as Partial<Fp8Binding>).fp8Forward === "function" && hasFp8StateBinding(b);

/** The FP8 formats of a state: forward (q's) and backward (dO's). */
export function fp8Formats(state: Fp8MetaState): { fwd: number; bwd: number } {
  return { fwd: FORMAT_CODE[state.q.dtype], bwd: FORMAT_CODE[state.dO.dtype] };
}

/**
 * The te_attn_desc of an FP8 call: its dtype is the F16 edge dtype (bf16 for FP8 storage), which the
 * FP8 entry points do not read but the descriptor reader checks.
 */
export function fp8Desc(p: AttentionParams): NativeDesc {
  const edge = DTYPE_CODE[isFp8(p.dtype) ? "bf16" : p.dtype] ?? 2;
  return { ...nativeDesc(p), dtype: edge, biasDtype: edge };
}

class Fp8Saved implements SavedForBackward {
  constructor(
    public inputs: AttentionInputs<CudaTensor> | null,
    /** q, k, v, O in FP8 as the forward graph read and wrote them. */
    public fp8: { q: CudaTensor; k: CudaTensor; v: CudaTensor; o: CudaTensor } | null,
    /** O in the edge dtype (fp8_dpa) for an F16 backward; null for fp8_mha. */
    public oEdge: CudaTensor | null,
    public lse: CudaTensor | null,
    /**
     * The device scaling block the forward ran with (its forward slots descale the saved FP8 tensors);
     * the backward fills its backward slots. Back to its pool on release.
     */
    public block: NativeDeviceTensor | null,
    private readonly pool: DeviceFp8State,
    /** The recipe state the forward recorded into; backward reads its scales and records into it. */
    public readonly state: Fp8MetaState,
    private readonly owned: CudaTensor[],
  ) {}
  release(): void {
    for (const t of this.owned) t.buffer.dispose();
    this.owned.length = 0;
    if (this.block !== null) this.pool.giveBlock(this.block);
    this.block = null;
    this.inputs = null;
    this.fp8 = null;
    this.oEdge = null;
    this.lse = null;
  }
}

/** The F16 path an FP8 call's backward takes with NVTE_FP8_DPA_BWD=0 (cuda.cudnn's sub-backend 1). */
export type F16BackwardFromStats = (
  inputs: AttentionInputs<CudaTensor>,
  o: CudaTensor,
  lse: CudaTensor,
  dO: CudaTensor,
  p: AttentionParams,
) => Promise<Gradients<CudaTensor>>;

export function createFp8Attention(
  binding: NativeBinding & Fp8Binding & Fp8StateBinding,
  id: string,
  f16: F16BackwardFromStats,
) {
  /**
   * The state of calls given none: TE's default recipe's (every scale 1). Nothing updates it, so its
   * scales stay 1 as a fresh state's would; what such calls record is never read.
   */
  let defaultState: Fp8MetaState | null = null;
  const stateOf = (inputs: AttentionInputs<CudaTensor>): Fp8MetaState => {
    if (inputs.fp8Meta) return inputs.fp8Meta;
    defaultState ??= createFp8Meta(delayedScaling({ fp8Dpa: true }));
    return defaultState;
  };

  const fail = (e: unknown): never => {
    const err = e as Error & { code?: string; argument?: string };
    if (err.code === "TE_ERR_INVALID_ARGUMENT")
      throw new ArgumentError(err.argument ?? "args", err.message, "");
    throw new BackendError(id, err.message, err.code ?? "TE_BACKEND_FAILED", { cause: e });
  };

  /** A [batch, seq, head, channel] view of an FP8 tensor of the call's format. */
  const view = (
    name: string,
    t: CudaTensor,
    p: AttentionParams,
    heads: number,
    channels: number,
    kv: boolean,
  ) => {
    const dims = { b: p.b, s: kv ? p.skv : p.sq, heads, x: channels, lengths: [] };
    const shape = expectedShape(p.qkvFormat, dims, 0);
    if (t.shape.length !== shape.length || t.shape.some((n, i) => n !== shape[i]))
      throw new ArgumentError(`${name}.shape`, `[${shape}] (${p.qkvFormat})`, `[${t.shape}]`);
    const st = t.strides;
    const [b, s] = p.qkvFormat === "sbhd" ? [st[1], st[0]] : [st[0], st[1]];
    return { data: t.buffer, offset: t.offset, b, s, h: st[2], c: st[3] };
  };

  /**
   * Lengths for padding masks: one device buffer per argument, uploaded only when the values change
   * (an upload waits for the device; a training loop passes the same lengths call after call). An
   * upload is ordered after the queued work that reads the previous values (the legacy stream).
   */
  const lengthBuffers = new Map<string, { t: NativeDeviceTensor; values: Int32Array }>();
  const lengths = (inputs: AttentionInputs<CudaTensor>, p: AttentionParams) => {
    if (!isPadding(p.maskType)) return {};
    const put = (name: string, a: Int32Array | undefined) => {
      if (!(a instanceof Int32Array) || a.length !== p.b + 1)
        throw new ArgumentError(name, `an Int32Array of b + 1 = ${p.b + 1} lengths`, a);
      const held = lengthBuffers.get(name);
      if (
        held &&
        !held.t.disposed &&
        held.values.length === a.length &&
        held.values.every((x, i) => x === a[i])
      )
        return held.t;
      let t = held?.t;
      if (t === undefined || t.disposed || t.byteLength !== a.byteLength) {
        t?.dispose();
        t = new binding.DeviceTensor(a.byteLength, 0);
      }
      t.upload(a);
      lengthBuffers.set(name, { t, values: a.slice() });
      return t;
    };
    return {
      cuSeqlensQ: put("cuSeqlensQ", inputs.cuSeqlensQ),
      cuSeqlensKv: put("cuSeqlensKv", inputs.cuSeqlensKv),
    };
  };

  /** An F16 tensor in FP8 (quantised with `as`'s scale, amax into its slot), or an FP8 one as given. */
  const toFp8 = (
    name: string,
    t: CudaTensor,
    dtype: Fp8DType,
    as: Fp8TensorName,
    meta: NativeDeviceTensor,
    owned: CudaTensor[],
    cache: Map<NativeDeviceTensor, CudaTensor>,
  ): CudaTensor => {
    if (isFp8Storage(t.dtype)) {
      if (t.dtype !== dtype) throw new ArgumentError(`${name}.dtype`, dtype, t.dtype);
      return t;
    }
    const src = DTYPE_CODE[t.dtype as "fp16" | "bf16"];
    if (src === undefined || src === 0)
      throw new ArgumentError(`${name}.dtype`, "fp16, bf16 or an FP8 dtype", t.dtype);
    // Packed layouts share one buffer: its whole storage is cast once and the views keep their strides.
    let storage = cache.get(t.buffer);
    if (storage === undefined) {
      const n = t.buffer.byteLength / 2;
      storage = allocateWith(binding, dtype, [n], 0, false);
      owned.push(storage);
      binding.fp8Quantize(src, t.buffer, 0, n, FORMAT_CODE[dtype], storage.buffer, 0, meta, slot(as));
      cache.set(t.buffer, storage);
    }
    return { dtype, shape: t.shape, strides: t.strides, offset: t.offset, buffer: storage.buffer };
  };

  const fromFp8 = (t: CudaTensor, dtype: "fp16" | "bf16", as: Fp8TensorName, meta: NativeDeviceTensor) => {
    const out = allocateWith(binding, dtype, t.shape, 0, false);
    const n = numel(t.shape);
    binding.fp8Dequantize(
      FORMAT_CODE[t.dtype as Fp8DType],
      t.buffer,
      t.offset,
      n,
      DTYPE_CODE[dtype] ?? 2,
      out.buffer,
      meta,
      slot(as),
    );
    return out;
  };

  const contiguousLike = (like: CudaTensor, channels: number, dtype: CudaTensor["dtype"]) => {
    const shape = [...like.shape];
    shape[shape.length - 1] = channels;
    return allocateWith(binding, dtype, shape, 0, false);
  };

  async function forward(inputs: AttentionInputs<CudaTensor>, p: AttentionParams) {
    const state = stateOf(inputs);
    const mode = p.fp8 ?? { dpa: true, mha: isFp8Storage(inputs.q.dtype), backward: true };
    const device = deviceStateFor(binding, id, state);
    const { fwd } = device.formats;
    const edge = isFp8Storage(inputs.q.dtype) ? "bf16" : (inputs.q.dtype as "fp16" | "bf16");
    const meta = device.takeBlock();
    const owned: CudaTensor[] = [];
    try {
      device.prepare(meta, "forward");
      const cache = new Map<NativeDeviceTensor, CudaTensor>();
      const q8 = toFp8("q", inputs.q, state.q.dtype, "q", meta, owned, cache);
      const k8 = toFp8("k", inputs.k, state.q.dtype, "q", meta, owned, cache);
      const v8 = toFp8("v", inputs.v, state.q.dtype, "q", meta, owned, cache);
      const o8 = contiguousLike(inputs.q, p.dv, state.o.dtype);
      owned.push(o8);
      const lse = allocateWith(binding, "fp32", [p.b, p.h, p.sq], 0, false);
      owned.push(lse);
      try {
        binding.fp8Forward(
          fp8Desc(p),
          {
            q: view("q", q8, p, p.h, p.d, false),
            k: view("k", k8, p, p.hg, p.d, true),
            v: view("v", v8, p, p.hg, p.dv, true),
            o: view("o", o8, p, p.h, p.dv, false),
            lse: lse.buffer,
            ...lengths(inputs, p),
          },
          fwd,
          meta,
        );
      } catch (e) {
        fail(e);
      }
      const o = mode.mha ? o8 : fromFp8(o8, edge, "o", meta);
      if (o !== o8) owned.push(o);
      // fp8_mha: q, k, v came in FP8 (the layer before recorded their amax); the casts wrote none.
      device.record(meta, isFp8Storage(inputs.q.dtype) ? ["s", "o"] : ["q", "s", "o"]);
      // The caller owns o and lse; the saved state owns the FP8 copies and the block.
      const mine = owned.filter((t) => t !== o && t !== lse);
      const saved = new Fp8Saved(
        inputs,
        { q: q8, k: k8, v: v8, o: o8 },
        mode.mha ? null : o,
        lse,
        meta,
        device,
        state,
        mine,
      );
      return { o, lse, saved };
    } catch (e) {
      for (const t of owned) t.buffer.dispose();
      device.giveBlock(meta);
      throw e;
    }
  }

  const liveBlock = (s: Fp8Saved): NativeDeviceTensor => {
    if (s.block === null)
      throw new ArgumentError("saved", "saved state that was not released", "a released state");
    return s.block;
  };

  async function backward(saved: SavedForBackward, dO: CudaTensor, p: AttentionParams) {
    const s = saved as Fp8Saved;
    if (!(s instanceof Fp8Saved))
      throw new ArgumentError("saved", `the saved state of a ${id} FP8 forward`, saved);
    if (s.inputs === null || s.fp8 === null || s.lse === null)
      throw new ArgumentError("saved", "saved state that was not released", "a released state");
    const mode = p.fp8 ?? { dpa: true, mha: false, backward: true };
    const edge = isFp8Storage(s.inputs.q.dtype) ? "bf16" : (s.inputs.q.dtype as "fp16" | "bf16");
    if (!mode.backward) return f16Backward(s, dO, p, edge);
    const state = s.state;
    // The state's device copy now (a new upload if it was released to the host since the forward).
    const device = deviceStateFor(binding, id, state);
    const { fwd, bwd } = device.formats;
    // Forward slots as the forward ran; backward slots from the current state.
    const meta = liveBlock(s);
    device.prepare(meta, "backward");
    const owned: CudaTensor[] = [];
    try {
      const dO8 = toFp8("dO", dO, state.dO.dtype, "dO", meta, owned, new Map());
      const { q, k, v, o } = s.fp8;
      const dq8 = contiguousLike(q, p.d, state.dQ.dtype);
      const dk8 = contiguousLike(k, p.d, state.dQ.dtype);
      const dv8 = contiguousLike(v, p.dv, state.dQ.dtype);
      owned.push(dq8, dk8, dv8);
      try {
        binding.fp8Backward(
          fp8Desc(p),
          {
            q: view("q", q, p, p.h, p.d, false),
            k: view("k", k, p, p.hg, p.d, true),
            v: view("v", v, p, p.hg, p.dv, true),
            o: view("o", o, p, p.h, p.dv, false),
            lse: s.lse.buffer,
            dO: view("dO", dO8, p, p.h, p.dv, false),
            dq: view("dq", dq8, p, p.h, p.d, false),
            dk: view("dk", dk8, p, p.hg, p.d, true),
            dv: view("dv", dv8, p, p.hg, p.dv, true),
            ...lengths(s.inputs, p),
          },
          fwd,
          bwd,
          meta,
        );
      } catch (e) {
        fail(e);
      }
      const grads = mode.mha
        ? { dq: dq8, dk: dk8, dv: dv8 }
        : {
            dq: fromFp8(dq8, edge, "dQ", meta),
            dk: fromFp8(dk8, edge, "dQ", meta),
            dv: fromFp8(dv8, edge, "dQ", meta),
          };
      device.record(meta, isFp8Storage(dO.dtype) ? ["dP", "dQ", "dK", "dV"] : ["dO", "dP", "dQ", "dK", "dV"]);
      // Freed in stream order: the queued kernels that read them run first.
      if (!mode.mha) for (const t of owned) t.buffer.dispose();
      else for (const t of owned) if (t !== dq8 && t !== dk8 && t !== dv8) t.buffer.dispose();
      s.release();
      return grads;
    } catch (e) {
      for (const t of owned) t.buffer.dispose();
      throw e;
    }
  }

  /** NVTE_FP8_DPA_BWD=0: F16 backward on the F16 inputs (fp8_mha: dequantised) and dequantised O. */
  async function f16Backward(s: Fp8Saved, dO: CudaTensor, p: AttentionParams, edge: "fp16" | "bf16") {
    const inputs = s.inputs as AttentionInputs<CudaTensor>;
    const fp8 = s.fp8 as NonNullable<Fp8Saved["fp8"]>;
    // The forward's block: its scale_invs dequantise what the forward quantised.
    const meta = liveBlock(s);
    const temps: CudaTensor[] = [];
    try {
      const f16Of = (t: CudaTensor, as: Fp8TensorName) => {
        if (!isFp8Storage(t.dtype)) return t;
        const out = fromFp8(t, edge, as, meta);
        temps.push(out);
        return out;
      };
      const f16Inputs = {
        ...inputs,
        q: f16Of(inputs.q, "q"),
        k: f16Of(inputs.k, "k"),
        v: f16Of(inputs.v, "v"),
      };
      const o = s.oEdge ?? f16Of(fp8.o, "o");
      if (isFp8Storage(dO.dtype))
        throw new ArgumentError("dO.dtype", `${edge} (NVTE_FP8_DPA_BWD=0 runs backward in F16)`, dO.dtype);
      const grads = await f16(f16Inputs, o, s.lse as CudaTensor, dO, { ...p, fp8: null, dtype: edge });
      s.release();
      return grads;
    } finally {
      for (const t of temps) t.buffer.dispose();
    }
  }

  /** TE's default recipe's formats (HYBRID: E4M3 forward, E5M2 backward) for calls given no state. */
  const DEFAULT_FORMATS = { fwd: FORMAT_CODE.fp8e4m3, bwd: FORMAT_CODE.fp8e5m2 };

  /** "" when the C FP8 path can run the call, else why not. */
  function explain(p: AttentionParams, state: Fp8MetaState | undefined): string {
    const { fwd, bwd } = state ? fp8Formats(state) : DEFAULT_FORMATS;
    const fp8Backward = p.isTraining && (p.fp8?.backward ?? true);
    return binding.fp8Explain(fp8Desc(p), fwd, bwd, fp8Backward);
  }

  return { forward, backward, explain };
}

/** Whether a saved state is an FP8 forward's (backward dispatch). */
export const isFp8Saved = (s: SavedForBackward): boolean => s instanceof Fp8Saved;
