/**
 * Beyond the conformance cases: dropout (the Philox mapping must match the reference bit for bit), q/k/v as
 * strided views of one packed buffer, selection and TE's controls, and refusals with reasons.
 */
import {
  ArgumentError,
  type AttentionParams,
  type HostTensor,
  hostTensor,
  makeParams,
  referenceBackend,
  selectBackend,
  toFloat64,
} from "@te/core";
import { beforeAll, describe, expect, it } from "vitest";
import { download, upload, type WebGpuTensor, webgpuFlash, webgpuUnfused, wrapBuffer } from "../src/index.js";
import { deviceOrReason } from "./adapter.js";

let device: GPUDevice | null = null;
let reason = "";
beforeAll(async () => {
  ({ device, reason } = await deviceOrReason());
});

const random = (shape: number[]): HostTensor => {
  const t = hostTensor("fp32", shape);
  for (let i = 0; i < t.data.length; i++) t.data[i] = Math.random() * 2 - 1;
  return t;
};

/** Largest violation of |got - want| <= 1e-4 + 1e-4 |want| (equal infinities pass, NaN never does). */
function worst(got: Float64Array, want: Float64Array): number {
  expect(got.length).toBe(want.length);
  let bad = 0;
  for (let i = 0; i < got.length; i++) {
    if (got[i] === want[i]) continue;
    const excess = Math.abs(got[i] - want[i]) - (1e-4 + 1e-4 * Math.abs(want[i]));
    bad = Number.isNaN(excess) ? Number.POSITIVE_INFINITY : Math.max(bad, excess);
  }
  return bad;
}

const host = (p: AttentionParams): AttentionParams => ({ ...p, device: "host" });
const values = async (t: WebGpuTensor) => toFloat64(await download(t));

describe("webgpu backends", () => {
  it("dropout follows the core Philox mapping (forward and backward, flash and unfused)", async (ctx) => {
    if (!device) return ctx.skip(reason);
    const [b, s, h, d] = [2, 37, 2, 32];
    const p = makeParams({
      b,
      h,
      d,
      sq: s,
      maskType: "causal",
      dropout: 0.25,
      isTraining: true,
      device: "webgpu",
    });
    const q = random([b, s, h, d]);
    const k = random([b, s, h, d]);
    const v = random([b, s, h, d]);
    const dO = random([b, s, h, d]);
    const rng = { dropoutSeed: Math.floor(Math.random() * 2 ** 32), dropoutOffset: 5 };
    const ref = await referenceBackend.forward({ q, k, v, ...rng }, host(p));
    const refGrads = await referenceBackend.backward(ref.saved, dO, host(p));
    const noDropout = await referenceBackend.forward({ q, k, v }, host({ ...p, dropout: 0 }));
    for (const backend of [webgpuFlash, webgpuUnfused]) {
      const fwd = await backend.forward(
        { q: await upload(q), k: await upload(k), v: await upload(v), ...rng },
        p,
      );
      const o = await values(fwd.o);
      expect(worst(o, toFloat64(ref.o)), `${backend.id} o`).toBe(0);
      expect(worst(o, toFloat64(noDropout.o)), "dropout changes the output").toBeGreaterThan(0);
      const g = await backend.backward(fwd.saved, await upload(dO), p);
      expect(worst(await values(g.dq), toFloat64(refGrads.dq)), `${backend.id} dq`).toBe(0);
      expect(worst(await values(g.dk), toFloat64(refGrads.dk)), `${backend.id} dk`).toBe(0);
      expect(worst(await values(g.dv), toFloat64(refGrads.dv)), `${backend.id} dv`).toBe(0);
    }
  });

  it("reads q, k, v as strided views of one packed bs3hd buffer, without copies", async (ctx) => {
    if (!device) return ctx.skip(reason);
    const [b, s, h, d] = [2, 19, 3, 64];
    const packed = random([b, s, 3, h, d]);
    const strides = [s * 3 * h * d, 3 * h * d, d, 1];
    const view = (t: HostTensor, which: number): HostTensor => ({
      ...t,
      shape: [b, s, h, d],
      strides,
      offset: which * h * d,
    });
    const p = makeParams({ b, h, d, sq: s, qkvLayout: "bs3hd", maskType: "padding", device: "webgpu" });
    const cu = Int32Array.from([0, 11, 30]);
    const buffer = (await upload(packed)).buffer;
    const gpuView = (which: number) => wrapBuffer(buffer, [b, s, h, d], "fp32", strides, which * h * d);
    const ref = await referenceBackend.forward(
      { q: view(packed, 0), k: view(packed, 1), v: view(packed, 2), cuSeqlensQ: cu, cuSeqlensKv: cu },
      host(p),
    );
    const fwd = await webgpuFlash.forward(
      { q: gpuView(0), k: gpuView(1), v: gpuView(2), cuSeqlensQ: cu, cuSeqlensKv: cu },
      p,
    );
    expect(worst(await values(fwd.o), toFloat64(ref.o))).toBe(0);
    expect(worst(await values(fwd.lse), toFloat64(ref.lse))).toBe(0);
    fwd.saved.release();
  });

  it("writes zeros past the sequences' lengths though its pooled scratch holds an earlier call's output", async (ctx) => {
    if (!device) return ctx.skip(reason);
    const [b, s, h, d] = [2, 19, 3, 64];
    const [q, k, v] = await Promise.all([0, 1, 2].map(() => upload(random([b, s, h, d]))));
    const dense = await webgpuFlash.forward({ q, k, v }, makeParams({ b, h, d, sq: s, device: "webgpu" }));
    dense.saved.release();
    const cu = Int32Array.from([0, 11, 30]);
    const padded = makeParams({ b, h, d, sq: s, maskType: "padding", device: "webgpu" });
    const fwd = await webgpuFlash.forward({ q, k, v, cuSeqlensQ: cu, cuSeqlensKv: cu }, padded);
    const o = await values(fwd.o);
    // Batch entry 0 has 11 of its 19 rows: rows 11.. of it are padding.
    for (let row = 11; row < s; row++)
      expect(o.subarray(row * h * d, (row + 1) * h * d).every((x) => x === 0)).toBe(true);
    fwd.saved.release();
  });

  it("is selected for WebGPU tensors and honours NVTE_FLASH_ATTN", (ctx) => {
    if (!device) return ctx.skip(reason);
    const p = makeParams({ b: 1, h: 2, d: 64, sq: 128, device: "webgpu" });
    expect(selectBackend(p).backend.id).toBe("webgpu.flash");
    expect(selectBackend(p, { env: { NVTE_FLASH_ATTN: "0" } }).backend.id).toBe("webgpu.unfused");
  });

  it("refuses what it cannot run, with reasons", () => {
    const context = { cudaArch: null, env: {} };
    const big = webgpuFlash.explain(makeParams({ b: 1, h: 1, d: 512, sq: 8, device: "webgpu" }), context);
    expect(big.ok).toBe(false);
    if (!big.ok) expect(big.reasons.map((r) => r.rule)).toContain("webgpu.head_dim");
    const fp8 = webgpuUnfused.explain(
      makeParams({
        b: 1,
        h: 1,
        d: 64,
        sq: 8,
        device: "webgpu",
        fp8: { dpa: true, mha: false, backward: false },
      }),
      context,
    );
    expect(fp8.ok).toBe(false);
    if (!fp8.ok) expect(fp8.reasons.map((r) => r.rule)).toContain("webgpu.fp8");
    const huge = webgpuUnfused.explain(
      makeParams({ b: 64, h: 64, d: 64, sq: 8192, device: "webgpu" }),
      context,
    );
    expect(huge.ok).toBe(false);
    if (!huge.ok) expect(huge.reasons.map((r) => r.rule)).toContain("webgpu.unfused.scores_size");
  });

  it("names the argument when a tensor has the wrong shape", async (ctx) => {
    if (!device) return ctx.skip(reason);
    const p = makeParams({ b: 1, h: 2, d: 64, sq: 8, device: "webgpu" });
    const good = await upload(random([1, 8, 2, 64]));
    const bad = await upload(random([1, 8, 2, 32]));
    const error = await webgpuFlash.forward({ q: good, k: bad, v: good }, p).catch((e: unknown) => e);
    expect(ArgumentError.isInstance(error)).toBe(true);
    expect((error as ArgumentError).argument).toBe("inputs.k.shape");
  });
});
