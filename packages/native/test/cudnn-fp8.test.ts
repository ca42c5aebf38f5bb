import {
  createFp8Meta,
  delayedScaling,
  FP8_BACKWARD_TENSORS,
  FP8_FORWARD_TENSORS,
  type Fp8MetaState,
  type Fp8TensorName,
  fp8DeviceStateOf,
  kernelScaleOfS,
  makeParams,
  readFp8Meta,
  recordSharedAmax,
  releaseFp8Meta,
  updateAttentionFp8Scales,
} from "@te/core";
import { describe, expect, it } from "vitest";
import { createCudnnBackend } from "../src/backends/cudnn-backend.js";
import { decodeFp8State, encodeFp8State, FP8_TENSORS } from "../src/backends/fp8-device-state.js";
import type { NativeBinding, NativeDeviceTensor } from "../src/binding.js";
import type { CudaTensor } from "../src/device.js";

/** Device memory faked on the host: bytes that upload/download copy (counted: each one waits for a GPU). */
class FakeDeviceTensor implements NativeDeviceTensor {
  static transfers = 0;
  bytes: Uint8Array;
  disposed = false;
  readonly device = 0;
  static created: number[] = [];
  constructor(byteLength: number) {
    FakeDeviceTensor.created.push(byteLength);
    this.bytes = new Uint8Array(byteLength);
  }
  get byteLength() {
    return this.bytes.byteLength;
  }
  upload(src: ArrayBufferView) {
    FakeDeviceTensor.transfers++;
    this.write(src);
  }
  /** What a kernel writes (no host transfer). */
  write(src: ArrayBufferView) {
    this.bytes.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  }
  download<A extends ArrayBufferView>(dst: A): A {
    FakeDeviceTensor.transfers++;
    new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength).set(this.bytes.subarray(0, dst.byteLength));
    return dst;
  }
  zero() {
    this.bytes.fill(0);
    return this;
  }
  dispose() {
    this.disposed = true;
  }
  floats() {
    return new Float32Array(this.bytes.buffer.slice(0));
  }
}

const META = (t: number) => ({ scale: 3 * t, scaleInv: 3 * t + 1, amax: 3 * t + 2 });
const Q = 0,
  K = 1,
  V = 2,
  S = 3,
  O = 4,
  DO = 5,
  DP = 6,
  DQ = 7;

/** A binding with the FP8 entry points that records each call and writes chosen amaxes into the meta block. */
function fp8Binding(reason = "") {
  const calls: { name: string; args: unknown[]; meta?: Float32Array }[] = [];
  const writeAmax = (meta: FakeDeviceTensor, values: Record<number, number>) => {
    const m = meta.floats();
    for (const [t, a] of Object.entries(values)) m[META(Number(t)).amax] = a;
    meta.write(m);
  };
  // The recipe-state kernels (native/cudnn/fp8_recipe_state.cu) modelled with core's host functions,
  // which they mirror: the state decoded into a host record, changed, encoded back.
  const onState = (state: FakeDeviceTensor, len: number, f: (host: Fp8MetaState) => void) => {
    const host = createFp8Meta(delayedScaling({ fp8Dpa: true, amaxHistoryLen: len }));
    decodeFp8State(state.bytes, len, host);
    f(host);
    state.write(encodeFp8State(host, len));
  };
  const passTensors = (pass: number): readonly Fp8TensorName[] =>
    pass === 0 ? FP8_FORWARD_TENSORS : FP8_BACKWARD_TENSORS;
  const shared: Partial<Record<Fp8TensorName, Fp8TensorName>> = { k: "q", v: "q", dK: "dQ", dV: "dQ" };
  const binding = {
    explain: (backend: string) => {
      calls.push({ name: `explain:${backend}`, args: [] });
      return "";
    },
    forward: async () => undefined,
    // The F16 family's backward, called on the thread pool or queued on the JS thread.
    backward: async (...args: unknown[]) => {
      calls.push({ name: "f16Backward", args });
    },
    enqueueForward: () => undefined,
    enqueueBackward: (...args: unknown[]) => {
      calls.push({ name: "f16Backward", args });
    },
    externalMemory: () => ({ liveBytes: 0, reportedBytes: 0 }),
    backends: () => "cpu,cuda.cudnn",
    deviceInfo: () => ({ cudaCompiled: true, devices: [] }),
    philox: (c: Uint32Array) => c,
    DeviceTensor: FakeDeviceTensor as unknown as NativeBinding["DeviceTensor"],
    synchronize: async () => undefined,
    cudnnVersion: () => 91900,
    fp8Explain: (...args: unknown[]) => {
      calls.push({ name: "fp8Explain", args });
      return reason;
    },
    fp8Forward: (
      d: { dtype: number; biasDtype: number },
      args: unknown,
      fwd: number,
      meta: FakeDeviceTensor,
    ) => {
      // The addon's descriptor reader takes F16 codes only (0..2).
      if (d.dtype !== 2 || d.biasDtype !== 2)
        throw new Error(`desc dtype ${d.dtype} biasDtype ${d.biasDtype}`);
      calls.push({ name: "fp8Forward", args: [args, fwd], meta: meta.floats() });
      writeAmax(meta, { [S]: 0.5, [O]: 3 });
    },
    fp8Backward: (_d: unknown, args: unknown, fwd: number, bwd: number, meta: FakeDeviceTensor) => {
      calls.push({ name: "fp8Backward", args: [args, fwd, bwd], meta: meta.floats() });
      writeAmax(meta, { [DP]: 0.01, [DQ]: 4, 8: 5, 9: 6 });
    },
    fp8Quantize: (...args: unknown[]) => {
      const meta = args[7] as FakeDeviceTensor;
      calls.push({ name: "fp8Quantize", args, meta: meta.floats() });
      const t = args[8] as number;
      const m = meta.floats();
      m[META(t).amax] = Math.max(m[META(t).amax], t === DO ? 7 : 2);
      meta.write(m);
    },
    fp8Dequantize: (...args: unknown[]) => {
      calls.push({ name: "fp8Dequantize", args });
    },
    fp8StatePrepare: (
      state: FakeDeviceTensor,
      len: number,
      _fwd: number,
      pass: number,
      meta: FakeDeviceTensor,
    ) => {
      calls.push({ name: "fp8StatePrepare", args: [len, pass] });
      const m = meta.floats();
      onState(state, len, (host) => {
        for (const t of passTensors(pass)) {
          const i = FP8_TENSORS.indexOf(t);
          const from = host[shared[t] ?? t];
          const scale = t === "s" ? kernelScaleOfS(from) : from.scale;
          m[META(i).scale] = scale;
          m[META(i).scaleInv] = t === "s" ? 1 / scale : from.scaleInv;
          m[META(i).amax] = 0;
        }
      });
      meta.write(m);
    },
    fp8StateRecord: (state: FakeDeviceTensor, len: number, meta: FakeDeviceTensor, bits: number) => {
      calls.push({ name: "fp8StateRecord", args: [len, bits] });
      const m = meta.floats();
      const amaxes = Object.fromEntries(
        FP8_TENSORS.flatMap((t, i) => (bits & (1 << i) ? [[t, m[META(i).amax]]] : [])),
      );
      onState(state, len, (host) => recordSharedAmax(host, amaxes));
    },
    fp8StateUpdate: (
      state: FakeDeviceTensor,
      len: number,
      _fwd: number,
      _bwd: number,
      pass: number,
      algo: number,
      marginScale: number,
    ) => {
      calls.push({ name: "fp8StateUpdate", args: [len, pass, algo, marginScale] });
      const recipe = delayedScaling({
        margin: Math.log2(marginScale),
        amaxComputeAlgo: algo === 0 ? "max" : "most_recent",
      });
      onState(state, len, (host) =>
        updateAttentionFp8Scales(host, recipe, pass === 0 ? "forward" : "backward"),
      );
    },
  };
  return { binding, calls };
}

function tensor(dtype: CudaTensor["dtype"], shape: number[], buffer?: NativeDeviceTensor): CudaTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  return { dtype, shape, strides, offset: 0, buffer: buffer ?? new FakeDeviceTensor(n * 2) };
}

const fp8Params = (backward = true) =>
  makeParams({
    b: 2,
    h: 4,
    d: 128,
    sq: 256,
    dtype: "bf16",
    device: "cuda",
    maskType: "causal",
    isTraining: true,
    fp8: { dpa: true, mha: false, backward },
  });
const context = { cudaArch: 90, env: {} };

describe("cuda.cudnn FP8 (sub-backend 2) on a fake addon", () => {
  it("runs FP8 calls on sub-backend 2 and asks the FP8 entry point, with the backward when training", () => {
    const { binding, calls } = fp8Binding();
    const b = createCudnnBackend(binding);
    expect(b.subBackend?.(fp8Params())).toBe(2);
    expect(b.subBackend?.({ ...fp8Params(), fp8: null })).toBe(1);
    expect(b.dtypes).toEqual(["fp16", "bf16", "fp8e4m3", "fp8e5m2"]);
    expect(b.explain(fp8Params(), context)).toEqual({ ok: true });
    expect(calls.map((c) => c.name)).toEqual(["fp8Explain"]);
    // HYBRID: E4M3 forward (0), E5M2 backward (1), backward asked.
    expect(calls[0].args.slice(1)).toEqual([0, 1, true]);
  });

  it("passes the C reason on, and with NVTE_FP8_DPA_BWD=0 also asks the F16 graph for the backward", () => {
    const refused = fp8Binding("cuda.cudnn FP8 backward on sm90 needs d = dv = 128 (d=64, dv=64)");
    const v = createCudnnBackend(refused.binding).explain(fp8Params(), context);
    expect(v.ok ? [] : v.reasons.map((r) => r.rule)).toEqual(["cuda.cudnn.fp8.kernel"]);
    const f16Bwd = fp8Binding();
    expect(createCudnnBackend(f16Bwd.binding).explain(fp8Params(false), context)).toEqual({ ok: true });
    expect(f16Bwd.calls.map((c) => c.name)).toEqual(["fp8Explain", "explain:cuda.cudnn"]);
    expect(f16Bwd.calls[0].args[3]).toBe(false);
  });

  it("casts q, k, v with the shared QKV scale, records the amaxes into the recipe state", async () => {
    const { binding, calls } = fp8Binding();
    const b = createCudnnBackend(binding);
    const state: Fp8MetaState = createFp8Meta(delayedScaling({ fp8Dpa: true }));
    state.q.scale = 100;
    state.q.scaleInv = 0.01;
    state.k.scale = 7; // a stale entry of the group: k and v are cast and descaled with q's scale
    const shape = [2, 256, 4, 128];
    const q = tensor("bf16", shape);
    const out = await b.forward(
      { q, k: tensor("bf16", shape), v: tensor("bf16", shape), fp8Meta: state },
      fp8Params(),
    );
    const quant = calls.filter((c) => c.name === "fp8Quantize");
    expect(quant).toHaveLength(3);
    for (const c of quant) {
      expect(c.args[8]).toBe(Q); // the amax and scale slot
      expect(c.args[3]).toBe(2 * 256 * 4 * 128);
    }
    const fwd = calls.find((c) => c.name === "fp8Forward");
    const m = fwd?.meta as Float32Array;
    expect([m[META(K).scale], m[META(V).scaleInv]]).toEqual([100, Math.fround(0.01)]);
    // The state is on the device: the host record is as it was until it is read back.
    expect(fp8DeviceStateOf(state)?.owner).toBe("cuda.cudnn");
    expect(state.q.amaxHistory[0]).toBe(0);
    readFp8Meta(state);
    expect(state.q.amaxHistory[0]).toBe(2);
    expect(state.v.amaxHistory[0]).toBe(2);
    expect(state.s.amaxHistory[0]).toBe(0.5);
    expect(state.o.amaxHistory[0]).toBe(3);
    // O comes back dequantised into bf16 with O's scale_inv.
    expect(out.o.dtype).toBe("bf16");
    expect(calls.some((c) => c.name === "fp8Dequantize" && c.args[7] === O)).toBe(true);
  });

  it("fp8_mha: FP8 tensors in and out, no edge cast, a descriptor the addon reads", async () => {
    const { binding, calls } = fp8Binding();
    const shape = [2, 256, 4, 128];
    const p = { ...fp8Params(), dtype: "fp8e4m3" as const, fp8: { dpa: true, mha: true, backward: true } };
    const fp8 = () => tensor("fp8e4m3", shape);
    const out = await createCudnnBackend(binding).forward({ q: fp8(), k: fp8(), v: fp8() }, p);
    expect(calls.filter((c) => c.name === "fp8Quantize" || c.name === "fp8Dequantize")).toEqual([]);
    expect(out.o.dtype).toBe("fp8e4m3");
    const e5 = tensor("fp8e5m2", shape);
    await expect(createCudnnBackend(binding).forward({ q: e5, k: e5, v: e5 }, p)).rejects.toThrow(/q.dtype/);
  });

  it("casts a packed qkv buffer once", async () => {
    const { binding, calls } = fp8Binding();
    const buffer = new FakeDeviceTensor(2 * 256 * 3 * 4 * 128 * 2);
    const view = (i: number): CudaTensor => ({
      dtype: "bf16",
      shape: [2, 256, 4, 128],
      strides: [256 * 3 * 4 * 128, 3 * 4 * 128, 128, 1],
      offset: i * 4 * 128,
      buffer,
    });
    await createCudnnBackend(binding).forward({ q: view(0), k: view(1), v: view(2) }, fp8Params());
    expect(calls.filter((c) => c.name === "fp8Quantize")).toHaveLength(1);
    const args = calls.find((c) => c.name === "fp8Forward")?.args[0] as { k: { offset: number; s: number } };
    expect(args.k).toMatchObject({ offset: 512, s: 3 * 4 * 128 });
  });

  it("runs backward with the forward's scale_invs, even after the forward scales were updated", async () => {
    const { binding, calls } = fp8Binding();
    const b = createCudnnBackend(binding);
    const recipe = delayedScaling({ fp8Dpa: true });
    const state = createFp8Meta(recipe);
    const shape = [2, 256, 4, 128];
    const p = fp8Params();
    const out = await b.forward(
      { q: tensor("bf16", shape), k: tensor("bf16", shape), v: tensor("bf16", shape), fp8Meta: state },
      p,
    );
    updateAttentionFp8Scales(state, recipe, "forward"); // queued on the device copy
    expect(calls.filter((c) => c.name === "fp8StateUpdate").map((c) => c.args)).toEqual([[1024, 0, 0, 1]]);
    expect(readFp8Meta(state).q.scaleInv).toBeCloseTo(2 / 448);
    const grads = await b.backward(out.saved, tensor("bf16", shape), p);
    readFp8Meta(state);
    const bwd = calls.find((c) => c.name === "fp8Backward");
    const m = bwd?.meta as Float32Array;
    expect(m[META(Q).scaleInv]).toBe(1); // as the forward ran
    expect(bwd?.args.slice(1)).toEqual([0, 1]);
    expect(state.dO.amaxHistory[0]).toBe(7);
    expect(state.dP.amaxHistory[0]).toBeCloseTo(0.01);
    // dQ, dK, dV share one amax (the max of the three), as TE's META_DQKV.
    expect([state.dQ.amaxHistory[0], state.dK.amaxHistory[0], state.dV.amaxHistory[0]]).toEqual([6, 6, 6]);
    expect(grads.dq.dtype).toBe("bf16");
  });

  it("with NVTE_FP8_DPA_BWD=0 runs the F16 backward of sub-backend 1 on the F16 tensors", async () => {
    const { binding, calls } = fp8Binding();
    const b = createCudnnBackend(binding);
    const shape = [2, 256, 4, 128];
    const p = fp8Params(false);
    const out = await b.forward(
      { q: tensor("bf16", shape), k: tensor("bf16", shape), v: tensor("bf16", shape) },
      p,
    );
    await b.backward(out.saved, tensor("bf16", shape), p);
    expect(calls.some((c) => c.name === "fp8Backward")).toBe(false);
    const f16 = calls.find((c) => c.name === "f16Backward");
    expect(f16?.args[0]).toBe("cuda.cudnn");
    expect((f16?.args[1] as { dtype: number } | undefined)?.dtype).toBe(2);
  });

  it("keeps the recipe state on the device: one upload, then no host transfer per step", async () => {
    const { binding, calls } = fp8Binding();
    const b = createCudnnBackend(binding);
    const recipe = delayedScaling({ fp8Dpa: true, amaxHistoryLen: 4 });
    const state = createFp8Meta(recipe);
    const shape = [2, 256, 4, 128];
    const p = fp8Params();
    const q = tensor("bf16", shape);
    const [k, v, dO] = [tensor("bf16", shape), tensor("bf16", shape), tensor("bf16", shape)];
    const before = FakeDeviceTensor.transfers;
    FakeDeviceTensor.created = [];
    for (let step = 0; step < 3; step++) {
      // As DotProductAttention does: forward, forward update, backward, backward update.
      const out = await b.forward({ q, k, v, fp8Meta: state }, p);
      updateAttentionFp8Scales(state, recipe, "forward");
      await b.backward(out.saved, dO, p);
      updateAttentionFp8Scales(state, recipe, "backward");
    }
    expect(FakeDeviceTensor.transfers - before).toBe(1); // the state's first upload
    // One scaling block of TE_FP8_META_FLOATS fp32, reused by every step.
    expect(FakeDeviceTensor.created.filter((n) => n === 120)).toHaveLength(1);
    // Order per pass: prepare, record (after the graph), update.
    const order = calls.map((c) => c.name).filter((n) => n.startsWith("fp8State") || n === "fp8Forward");
    expect(order.slice(0, 5)).toEqual([
      "fp8StatePrepare",
      "fp8Forward",
      "fp8StateRecord",
      "fp8StateUpdate",
      "fp8StatePrepare",
    ]);
    // The same steps on the host with core's functions and the amaxes the fake kernels report.
    const host = createFp8Meta(recipe);
    for (let step = 0; step < 3; step++) {
      recordSharedAmax(host, { q: 2, s: 0.5, o: 3 });
      updateAttentionFp8Scales(host, recipe, "forward");
      recordSharedAmax(host, { dO: 7, dP: Math.fround(0.01), dQ: 4, dK: 5, dV: 6 });
      updateAttentionFp8Scales(host, recipe, "backward");
    }
    expect(readFp8Meta(state)).toEqual(host);
    expect(FakeDeviceTensor.transfers - before).toBe(2); // the explicit read
  });

  it("releaseFp8Meta hands the state back to the host; the next call uploads it again", async () => {
    const { binding } = fp8Binding();
    const b = createCudnnBackend(binding);
    const recipe = delayedScaling({ fp8Dpa: true, amaxHistoryLen: 2 });
    const state = createFp8Meta(recipe);
    const shape = [2, 256, 4, 128];
    const inputs = {
      q: tensor("bf16", shape),
      k: tensor("bf16", shape),
      v: tensor("bf16", shape),
      fp8Meta: state,
    };
    (await b.forward(inputs, fp8Params())).saved.release();
    releaseFp8Meta(state);
    expect(fp8DeviceStateOf(state)).toBeUndefined();
    expect(state.o.amaxHistory[0]).toBe(3);
    state.q.scale = 4; // a host edit, taken by the next call's upload
    state.q.scaleInv = 0.25;
    const out = await b.forward(inputs, fp8Params());
    expect(fp8DeviceStateOf(state)?.owner).toBe("cuda.cudnn");
    out.saved.release();
    expect(readFp8Meta(state).o.amaxHistory[0]).toBe(3); // max of the two calls' 3
  });

  it("a function-valued amax_compute_algo runs on the host (the state is released first)", async () => {
    const { binding, calls } = fp8Binding();
    const b = createCudnnBackend(binding);
    const recipe = delayedScaling({ fp8Dpa: true, amaxHistoryLen: 2, amaxComputeAlgo: (h) => 2 * h[0] });
    const state = createFp8Meta(recipe);
    const shape = [2, 256, 4, 128];
    const out = await b.forward(
      { q: tensor("bf16", shape), k: tensor("bf16", shape), v: tensor("bf16", shape), fp8Meta: state },
      fp8Params(),
    );
    updateAttentionFp8Scales(state, recipe, "forward");
    expect(calls.some((c) => c.name === "fp8StateUpdate")).toBe(false);
    expect(fp8DeviceStateOf(state)).toBeUndefined();
    expect(state.o.scale).toBe(448 / 6);
    out.saved.release();
  });

  it("uploads padding lengths only when they change", async () => {
    const { binding } = fp8Binding();
    const b = createCudnnBackend(binding);
    const shape = [2, 256, 4, 128];
    const p = { ...fp8Params(), maskType: "padding" as const };
    const lengths = new Int32Array([0, 100, 356]);
    const inputs = {
      q: tensor("bf16", shape),
      k: tensor("bf16", shape),
      v: tensor("bf16", shape),
      cuSeqlensQ: lengths,
      cuSeqlensKv: lengths,
    };
    (await b.forward(inputs, p)).saved.release();
    const before = FakeDeviceTensor.transfers;
    (await b.forward(inputs, p)).saved.release();
    expect(FakeDeviceTensor.transfers).toBe(before);
    (await b.forward({ ...inputs, cuSeqlensQ: new Int32Array([0, 50, 300]) }, p)).saved.release();
    expect(FakeDeviceTensor.transfers).toBe(before + 1);
    await expect(b.forward({ ...inputs, cuSeqlensKv: new Int32Array([0, 1]) }, p)).rejects.toThrow(
      /cuSeqlensKv/,
    );
  });
});
