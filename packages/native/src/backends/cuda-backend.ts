import {
  ArgumentError,
  type AttentionBackend,
  type AttentionInputs,
  type AttentionParams,
  BackendError,
  defaultAlibiSlopes,
  type Eligibility,
  evaluateRules,
  expectedShape,
  fromFloat64,
  type Gradients,
  isPadding,
  type Rule,
  type SavedForBackward,
  teRank,
  toFloat64,
} from "@te/core";
import type { NativeBinding, NativeDeviceTensor, NativeView } from "../binding.js";
import { allocateWith, type CudaTensor, checkCudaTensor, cudaTensors, downloadTensor } from "../device.js";
import { nativeDesc } from "../native-desc.js";
import { UploadCache } from "../upload-cache.js";

/**
 * cuda.flash and cuda.unfused: our CUDA kernel families (native/cuda) through the addon, on CUDA
 * tensors. Every array of the argument block is device memory (the C families refuse host arrays), so
 * host inputs (cu_seqlens, ALiBi slopes, masks, a non-fp32 softmax offset) are uploaded: small ones
 * once per content (upload-cache.ts), masks per call.
 */
export type CudaBackendId = "cuda.flash" | "cuda.unfused" | "cuda.cudnn";

const FAMILY_OF: Record<CudaBackendId, "FlashAttention" | "UnfusedDotProductAttention" | "FusedAttention"> = {
  "cuda.flash": "FlashAttention",
  "cuda.unfused": "UnfusedDotProductAttention",
  "cuda.cudnn": "FusedAttention",
};

/** What the TypeScript side refuses before the C family's own explain is asked. */
export function cudaRules(id: CudaBackendId): readonly Rule[] {
  return [
    { id: `${id}.fp8`, rejects: (p) => p.fp8 !== null, message: "does not support FP8 attention" },
    {
      id: `${id}.device`,
      rejects: (p) => p.device !== "cuda",
      message: (p) => `runs on cuda tensors, not ${p.device} tensors`,
    },
    {
      id: `${id}.context_parallel`,
      rejects: (p) => p.cpSize > 1,
      message: "does not run context parallelism itself",
    },
    {
      id: `${id}.bias_grad`,
      // cuda.unfused reduces its dS buffer into dbias; the flash kernels keep no dS to reduce.
      rejects: (p) => p.biasRequiresGrad && id !== "cuda.unfused",
      message: "computes no bias gradient",
    },
  ];
}

/** A [batch, seq, head, channel] view of a CUDA tensor of the call's format. */
function cudaView(
  name: string,
  t: CudaTensor,
  p: AttentionParams,
  heads: number,
  channels: number,
  kv: boolean,
): NativeView {
  if (t.dtype !== p.dtype) throw new ArgumentError(`${name}.dtype`, p.dtype, t.dtype);
  if (t.shape.length !== t.strides.length)
    throw new ArgumentError(`${name}.strides`, `one stride per dimension of [${t.shape}]`, t.strides);
  const dims = { b: p.b, s: kv ? p.skv : p.sq, heads, x: channels, lengths: [] };
  const shape = expectedShape(p.qkvFormat, dims, p.qkvFormat === "thd" ? t.shape[0] : 0);
  if (t.shape.length !== shape.length || t.shape.some((n, i) => n !== shape[i]))
    throw new ArgumentError(`${name}.shape`, `[${shape}] (${p.qkvFormat})`, `[${t.shape}]`);
  const st = t.strides;
  if (p.qkvFormat === "bshd")
    return { data: t.buffer, offset: t.offset, b: st[0], s: st[1], h: st[2], c: st[3] };
  if (p.qkvFormat === "sbhd")
    return { data: t.buffer, offset: t.offset, b: st[1], s: st[0], h: st[2], c: st[3] };
  return { data: t.buffer, offset: t.offset, b: 0, s: st[0], h: st[1], c: st[2] };
}

/**
 * The device every CUDA tensor of a call is on (that of q; the others must match, none disposed).
 * The C families run on the worker thread's current device, which is device 0, so other devices are
 * refused rather than computed on the wrong GPU.
 */
function callDevice(binding: NativeBinding, tensors: Record<string, unknown>): number {
  const q = checkCudaTensor(binding, "q", tensors.q);
  const device = q.buffer.device;
  if (device !== 0) throw new ArgumentError("q.device", "device 0 (cuda.* families run on device 0)", device);
  for (const [name, t] of Object.entries(tensors))
    if (t !== undefined) checkCudaTensor(binding, name, t, device);
  return device;
}

/**
 * The device copies of a call's host arrays: small ones from the backend's UploadCache (kept for the
 * next call with the same content), larger ones (masks) uploaded for this call and disposed with it.
 */
class Uploads {
  private readonly owned: NativeDeviceTensor[] = [];
  constructor(
    private readonly binding: NativeBinding,
    private readonly cache: UploadCache,
  ) {}
  put(a: ArrayBufferView | undefined): NativeDeviceTensor | undefined {
    if (a === undefined) return undefined;
    if (UploadCache.fits(a)) return this.cache.get(a);
    const t = new this.binding.DeviceTensor(Math.max(a.byteLength, 4), 0);
    this.owned.push(t);
    if (a.byteLength > 0) t.upload(a);
    return t;
  }
  dispose(): void {
    for (const t of this.owned) t.dispose();
  }
}

/**
 * An output tensor. The kernels write every row of bshd/sbhd outputs (zeros past a length), but thd
 * storage rows outside every sequence (padded thd) are never written, so thd outputs start zeroed
 * (a memset queued on the device).
 */
function outputTensor(
  binding: NativeBinding,
  dtype: CudaTensor["dtype"],
  shape: readonly number[],
  zeroed: boolean,
): CudaTensor {
  return allocateWith(binding, dtype, shape, 0, zeroed);
}

/**
 * The outputs of one call, allocated from the addon's pool; a failed allocation (out of memory) is a
 * BackendError with the addon's status code, and every output is freed when the call fails.
 */
class Outputs {
  private readonly owned: CudaTensor[] = [];
  constructor(private readonly id: CudaBackendId) {}
  add(allocate: () => CudaTensor): CudaTensor {
    let t: CudaTensor;
    try {
      t = allocate();
    } catch (e) {
      const err = e as Error & { code?: string };
      throw new BackendError(this.id, `output allocation: ${err.message}`, err.code ?? "TE_BACKEND_FAILED", {
        cause: e,
      });
    }
    this.owned.push(t);
    return t;
  }
  dispose(): void {
    for (const t of this.owned) t.buffer.dispose();
  }
}

class CudaSaved implements SavedForBackward {
  constructor(
    public inputs: AttentionInputs<CudaTensor> | null,
    public o: CudaTensor | null,
    public lse: CudaTensor | null,
  ) {}
  release(): void {
    this.inputs = null;
    this.o = null;
    this.lse = null;
  }
}

/** Whether t is fp32 with exactly n contiguous elements at the start of its storage. */
function isPlainFp32(t: CudaTensor, n: number): boolean {
  if (t.dtype !== "fp32" || t.offset !== 0 || t.shape.reduce((a, b) => a * b, 1) !== n) return false;
  let stride = 1;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    if (t.shape[i] !== 1 && t.strides[i] !== stride) return false;
    stride *= t.shape[i];
  }
  return true;
}

function outputLike(
  binding: NativeBinding,
  like: CudaTensor,
  channels: number,
  p: AttentionParams,
): CudaTensor {
  const shape = [...like.shape];
  shape[shape.length - 1] = channels;
  return outputTensor(binding, p.dtype, shape, p.qkvFormat === "thd");
}

export function createCudaBackend(binding: NativeBinding, id: CudaBackendId): AttentionBackend<CudaTensor> {
  const rules = cudaRules(id);
  const uploads = new UploadCache(binding);

  // The argument block shared by forward and backward (o and lse are added by the caller).
  const inputArgs = (inputs: AttentionInputs<CudaTensor>, p: AttentionParams, up: Uploads) => {
    const thd = p.qkvFormat === "thd";
    const withLengths = thd || isPadding(p.maskType);
    if (withLengths && (inputs.cuSeqlensQ?.length !== p.b + 1 || inputs.cuSeqlensKv?.length !== p.b + 1))
      throw new ArgumentError(
        "cuSeqlensQ",
        `Int32Arrays of b + 1 = ${p.b + 1} cumulative lengths`,
        inputs.cuSeqlensQ,
      );
    const args: Record<string, unknown> = {
      q: cudaView("q", inputs.q, p, p.h, p.d, false),
      k: cudaView("k", inputs.k, p, p.hg, p.d, true),
      v: cudaView("v", inputs.v, p, p.hg, p.dv, true),
      cuSeqlensQ: withLengths ? up.put(inputs.cuSeqlensQ) : undefined,
      cuSeqlensKv: withLengths ? up.put(inputs.cuSeqlensKv) : undefined,
      cuSeqlensQPadded: thd ? up.put(inputs.cuSeqlensQPadded) : undefined,
      cuSeqlensKvPadded: thd ? up.put(inputs.cuSeqlensKvPadded) : undefined,
    };
    if (p.biasType === "pre_scale_bias" || p.biasType === "post_scale_bias") {
      const b = inputs.bias;
      if (b === undefined || b.shape.length !== 4 || b.strides[3] !== 1)
        throw new ArgumentError("bias", "a 4-d CUDA tensor with unit last stride", b?.shape);
      args.bias = { data: b.buffer, offset: b.offset, sb: b.strides[0], sh: b.strides[1], ss: b.strides[2] };
    }
    if (p.biasType === "alibi") {
      const slopes = inputs.alibiSlopes ?? defaultAlibiSlopes(p.h);
      args.alibiSlopes = up.put(Float32Array.from(slopes));
    }
    if (p.maskType === "arbitrary") {
      const m = inputs.attnMask;
      if (m === undefined) throw new ArgumentError("attnMask", "a MaskTensor for the arbitrary mask", m);
      args.mask = up.put(m.data);
      args.maskB = m.shape[0];
      args.maskH = m.shape[1];
    }
    if (p.softmaxType === "learnable") {
      const t = inputs.softmaxOffset;
      if (t === undefined) throw new ArgumentError("softmaxOffset", `a tensor of shape [${p.h}]`, t);
      // An fp32 offset whose storage starts with its h values is read in place; other dtypes are
      // converted to fp32 on the host (a download: it waits for the device).
      args.softmaxOffset = isPlainFp32(t, p.h)
        ? t.buffer
        : up.put(Float32Array.from(toFloat64(downloadTensor(t)).subarray(0, p.h)));
    }
    return args;
  };

  const run = (
    what: "forward" | "backward",
    p: AttentionParams,
    inputs: AttentionInputs<CudaTensor>,
    args: object,
  ) => {
    const desc = nativeDesc(
      p,
      { seed: inputs.dropoutSeed, offset: inputs.dropoutOffset },
      inputs.bias?.dtype ?? p.dtype,
    );
    try {
      // The addon reads every array of the block as a typed array or a DeviceTensor (marshal.cpp). The
      // family checks it and queues the kernels on the JS thread (no thread-pool round trip per call).
      if (what === "forward") binding.enqueueForward(id, desc, args as never);
      else binding.enqueueBackward(id, desc, args as never);
    } catch (e) {
      const err = e as Error & { code?: string };
      if (err.code === "TE_ERR_INVALID_ARGUMENT") throw new ArgumentError("args", err.message, "");
      throw new BackendError(id, err.message, err.code ?? "TE_BACKEND_FAILED", { cause: e });
    }
  };

  const backwardFromStats = async (
    inputs: AttentionInputs<CudaTensor>,
    o: CudaTensor,
    lse: CudaTensor,
    dO: CudaTensor,
    p: AttentionParams,
  ): Promise<Gradients<CudaTensor>> => {
    callDevice(binding, {
      q: inputs.q,
      k: inputs.k,
      v: inputs.v,
      o,
      lse,
      dO,
      bias: inputs.bias,
      softmaxOffset: inputs.softmaxOffset,
    });
    const out = new Outputs(id);
    const up = new Uploads(binding, uploads);
    try {
      // Argument errors come before any output is allocated.
      const given = {
        ...inputArgs(inputs, p, up),
        o: cudaView("o", o, p, p.h, p.dv, false),
        lse: lse.buffer,
        dO: cudaView("dO", dO, p, p.h, p.dv, false),
      };
      const dq = out.add(() => outputLike(binding, inputs.q, p.d, p));
      const dk = out.add(() => outputLike(binding, inputs.k, p.d, p));
      const dv = out.add(() => outputLike(binding, inputs.v, p.dv, p));
      const dOffset =
        p.softmaxType === "learnable" ? out.add(() => outputTensor(binding, "fp32", [p.h], true)) : undefined;
      // Every element of dbias is written ([bias_b, bias_h, sq, skv], contiguous).
      const bias = inputs.bias;
      const dbias =
        p.biasRequiresGrad && bias
          ? out.add(() => allocateWith(binding, bias.dtype, bias.shape, 0, false))
          : undefined;
      run("backward", p, inputs, {
        ...given,
        dq: cudaView("dq", dq, p, p.h, p.d, false),
        dk: cudaView("dk", dk, p, p.hg, p.d, true),
        dv: cudaView("dv", dv, p, p.hg, p.dv, true),
        dSoftmaxOffset: dOffset?.buffer,
        dbias: dbias?.buffer,
      });
      return { dq, dk, dv, dbias, dSoftmaxOffset: await offsetGradient(dOffset, inputs, p) };
    } catch (e) {
      out.dispose();
      throw e;
    } finally {
      up.dispose();
    }
  };

  /** The learnable softmax offset's gradient (fp32 from the kernels) in the offset's own dtype. */
  const offsetGradient = async (
    dOffset: CudaTensor | undefined,
    inputs: AttentionInputs<CudaTensor>,
    p: AttentionParams,
  ): Promise<CudaTensor | undefined> => {
    if (!dOffset || !inputs.softmaxOffset || inputs.softmaxOffset.dtype === "fp32") return dOffset;
    const host = fromFloat64(inputs.softmaxOffset.dtype, [p.h], toFloat64(downloadTensor(dOffset)));
    const converted = await cudaTensors.fromHost(host);
    dOffset.buffer.dispose();
    return converted;
  };

  return {
    specificationVersion: "v1",
    id,
    family: FAMILY_OF[id],
    tensors: cudaTensors,
    dtypes: id === "cuda.unfused" ? ["fp32", "fp16", "bf16"] : ["fp16", "bf16"],
    rank: (context) => teRank(FAMILY_OF[id], context.cudaArch),
    explain(p): Eligibility {
      const verdict = evaluateRules(rules, p, undefined);
      if (!verdict.ok) return verdict;
      const reason = binding.explain(id, nativeDesc(p));
      return reason === "" ? verdict : { ok: false, reasons: [{ rule: `${id}.kernel`, message: reason }] };
    },
    async forward(inputs, p) {
      callDevice(binding, {
        q: inputs.q,
        k: inputs.k,
        v: inputs.v,
        bias: inputs.bias,
        softmaxOffset: inputs.softmaxOffset,
      });
      const out = new Outputs(id);
      const up = new Uploads(binding, uploads);
      try {
        // Argument errors come before any output is allocated.
        const given = inputArgs(inputs, p, up);
        const o = out.add(() => outputLike(binding, inputs.q, p.dv, p));
        const lse = out.add(() => allocateWith(binding, "fp32", [p.b, p.h, p.sq], 0, false));
        run("forward", p, inputs, {
          ...given,
          o: cudaView("o", o, p, p.h, p.dv, false),
          lse: lse.buffer,
        });
        return { o, lse, saved: new CudaSaved(inputs, o, lse) };
      } catch (e) {
        out.dispose();
        throw e;
      } finally {
        up.dispose();
      }
    },
    async backward(saved, dO, p) {
      const s = saved as CudaSaved;
      if (!(s instanceof CudaSaved))
        throw new ArgumentError("saved", `the saved state of a ${id} forward`, saved);
      if (s.inputs === null || s.o === null || s.lse === null)
        throw new ArgumentError("saved", "saved state that was not released", "a released state");
      return backwardFromStats(s.inputs, s.o, s.lse, dO, p);
    },
    backwardFromStats,
  };
}

/** The CUDA families compiled into the loaded addon. */
export function cudaBackendIds(binding: NativeBinding): CudaBackendId[] {
  const have = binding.backends().split(",");
  return (["cuda.flash", "cuda.unfused"] as const).filter((id) => have.includes(id));
}
