import { describe, expect, it } from "vitest";
import type { AttentionInputs } from "../src/backend.js";
import { inLayoutGroup } from "../src/conformance/packed-views.js";
import { dropoutKeep } from "../src/dropout-rng.js";
import { ArgumentError } from "../src/errors.js";
import { getBackend } from "../src/index.js";
import { QKV_LAYOUTS, qkvFormatOf, qkvLayoutGroupOf } from "../src/layout.js";
import { makeParams } from "../src/params.js";
import { referenceBackend } from "../src/reference/backend.js";
import { fromFloat64, toFloat64 } from "../src/reference/host-values.js";
import { selectBackend } from "../src/selection.js";
import type { HostTensor } from "../src/tensor.js";
import { freshSeed, randomCall, randomTensor } from "./reference-helpers.js";

type Inputs = AttentionInputs<HostTensor>;

async function run(inputs: Inputs, dO: HostTensor, p: ReturnType<typeof makeParams>) {
  const fwd = await referenceBackend.forward(inputs, p);
  const g = await referenceBackend.backward(fwd.saved, dO, p);
  return {
    o: toFloat64(fwd.o),
    lse: toFloat64(fwd.lse),
    dq: toFloat64(g.dq),
    dk: toFloat64(g.dk),
    dv: toFloat64(g.dv),
  };
}

describe("the reference backend", () => {
  it("is registered by importing @te/core and is the host fallback of selection", () => {
    expect(getBackend("reference")).toBe(referenceBackend);
    const p = makeParams({ b: 1, h: 1, d: 8, sq: 4 });
    expect(selectBackend(p, { backends: ["reference"] }).backend.id).toBe("reference");
    expect(referenceBackend.rank({ cudaArch: 90, env: {} })).toBeGreaterThan(20);
  });

  it("refuses FP8 and context parallelism with reasons", () => {
    const p = makeParams({
      b: 1,
      h: 1,
      d: 8,
      sq: 4,
      cpSize: 2,
      fp8: { dpa: true, mha: false, backward: true },
    });
    const e = referenceBackend.explain(p, { cudaArch: null, env: {} });
    expect(e.ok).toBe(false);
    if (!e.ok)
      expect(e.reasons.map((r) => r.rule).sort()).toEqual(["reference.context_parallel", "reference.fp8"]);
  });

  it("reads all 15 layouts through strides with identical results", async () => {
    const seed = freshSeed();
    const results = new Map<string, Awaited<ReturnType<typeof run>>>();
    for (const layout of QKV_LAYOUTS) {
      const qkvFormat = qkvFormatOf(layout);
      const base = { b: 2, h: 2, d: 4, sq: 5, maskType: "padding_causal" as const, isTraining: true };
      const p = makeParams({ ...base, qkvLayout: layout, qkvFormat, tq: 8, tkv: 8 });
      let inputs: Inputs;
      let dO: HostTensor;
      if (qkvFormat === "thd") {
        // Lengths 5 and 3: 8 packed tokens.
        inputs = {
          q: randomTensor(seed, 0, [8, 2, 4]),
          k: randomTensor(seed, 1, [8, 2, 4]),
          v: randomTensor(seed, 2, [8, 2, 4]),
        };
        dO = randomTensor(seed, 3, [8, 2, 4]);
      } else {
        ({ inputs, dO } = randomCall(p, seed));
      }
      const packed = inLayoutGroup(qkvLayoutGroupOf(layout), inputs.q, inputs.k, inputs.v);
      if ("reason" in packed) throw new Error(packed.reason);
      const { q, k, v } = packed;
      const cu = Int32Array.from([0, 5, 8]);
      const call = { q, k, v, cuSeqlensQ: cu, cuSeqlensKv: cu };
      const separate = await run({ ...inputs, cuSeqlensQ: cu, cuSeqlensKv: cu }, dO, p);
      const viaLayout = await run(call, dO, p);
      expect(viaLayout, `${layout} (seed ${seed})`).toEqual(separate);
      results.set(qkvFormat, separate);
    }
    expect(results.size).toBe(3);
  });

  it("thd with cu_seqlens_padded leaves the padding rows of o and the gradients zero", async () => {
    const seed = freshSeed();
    const p = makeParams({
      qkvFormat: "thd",
      b: 2,
      h: 1,
      d: 4,
      sq: 3,
      maskType: "padding",
      tq: 8,
      tkv: 8,
      paddedThd: true,
      isTraining: true,
    });
    const inputs: Inputs = {
      q: randomTensor(seed, 0, [8, 1, 4]),
      k: randomTensor(seed, 1, [8, 1, 4]),
      v: randomTensor(seed, 2, [8, 1, 4]),
      cuSeqlensQ: Int32Array.from([0, 3, 5]),
      cuSeqlensKv: Int32Array.from([0, 3, 5]),
      cuSeqlensQPadded: Int32Array.from([0, 4, 8]),
      cuSeqlensKvPadded: Int32Array.from([0, 4, 8]),
    };
    const r = await run(inputs, randomTensor(seed, 3, [8, 1, 4]), p);
    for (const row of [3, 6, 7]) {
      for (const t of [r.o, r.dq, r.dk, r.dv])
        expect([...t.slice(row * 4, row * 4 + 4)]).toEqual([0, 0, 0, 0]);
    }
    expect(r.lse[5]).toBe(Number.NEGATIVE_INFINITY); // batch 1, row 2: past its length of 2
    expect(Number.isFinite(r.lse[4])).toBe(true);
  });

  it("a row with no allowed key gives o = 0, lse = -inf and zero gradients; off_by_one gives lse = 0", async () => {
    const seed = freshSeed();
    // causal_bottom_right with sq > skv: rows i < sq - skv see nothing.
    const p = makeParams({
      b: 1,
      h: 1,
      d: 4,
      sq: 5,
      skv: 3,
      maskType: "causal_bottom_right",
      isTraining: true,
    });
    const { inputs, dO } = randomCall(p, seed);
    const r = await run(inputs, dO, p);
    expect([r.lse[0], r.lse[1]]).toEqual([Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]);
    expect(Number.isFinite(r.lse[2])).toBe(true);
    expect([...r.o.slice(0, 8)].every((x) => x === 0)).toBe(true);
    expect([...r.dq.slice(0, 8)].every((x) => x === 0)).toBe(true);
    const obo = await run(inputs, dO, { ...p, softmaxType: "off_by_one" });
    expect([obo.lse[0], obo.lse[1]]).toEqual([0, 0]);
    expect([...obo.o.slice(0, 8)].every((x) => x === 0)).toBe(true);
  });

  it("dropout follows the Philox keep bits, scaled by 1/(1-p), reproducibly", async () => {
    const seed = freshSeed();
    // v = identity (dv = skv), so o[i][j] is the dropped probability P_ij * keep_ij / (1 - p).
    const p = makeParams({ b: 2, h: 2, d: 4, dv: 6, sq: 3, skv: 6, dropout: 0.4, isTraining: true });
    const { inputs } = randomCall(p, seed);
    const eye = new Float64Array(2 * 6 * 2 * 6);
    for (let b = 0; b < 2; b++)
      for (let j = 0; j < 6; j++) for (let hh = 0; hh < 2; hh++) eye[((b * 6 + j) * 2 + hh) * 6 + j] = 1;
    const v = fromFloat64("fp64", [2, 6, 2, 6], eye);
    const call = { ...inputs, v, dropoutSeed: seed, dropoutOffset: 11 };
    const dropped = toFloat64((await referenceBackend.forward(call, p)).o);
    const plain = toFloat64((await referenceBackend.forward(call, { ...p, dropout: 0 })).o);
    const stream = { seed, offset: 11, p: 0.4, heads: 2 };
    let zeros = 0;
    for (let b = 0; b < 2; b++)
      for (let i = 0; i < 3; i++)
        for (let hh = 0; hh < 2; hh++)
          for (let j = 0; j < 6; j++) {
            const n = ((b * 3 + i) * 2 + hh) * 6 + j;
            const want = dropoutKeep(stream, b, hh, i, j) ? plain[n] / 0.6 : 0;
            if (want === 0) zeros++;
            expect(dropped[n]).toBeCloseTo(want, 14);
          }
    expect(zeros).toBeGreaterThan(0);
    expect(toFloat64((await referenceBackend.forward(call, p)).o)).toEqual(dropped);
    const other = toFloat64((await referenceBackend.forward({ ...call, dropoutSeed: seed + 1 }, p)).o);
    expect(other).not.toEqual(dropped);
  });

  it("never writes into its inputs", async () => {
    const seed = freshSeed();
    const p = makeParams({
      b: 1,
      h: 2,
      d: 4,
      sq: 4,
      biasType: "post_scale_bias",
      biasShape: "1hss",
      biasRequiresGrad: true,
      isTraining: true,
    });
    const { inputs, dO } = randomCall(p, seed);
    const call = { ...inputs, bias: randomTensor(seed, 4, [1, 2, 4, 4]) };
    const before = [call.q, call.k, call.v, call.bias, dO].map((t) => Float64Array.from(t.data));
    await run(call, dO, p);
    expect([call.q, call.k, call.v, call.bias, dO].map((t) => Float64Array.from(t.data))).toEqual(before);
  });

  it("names the argument when inputs do not match the params", async () => {
    const p = makeParams({ b: 1, h: 2, d: 4, sq: 4 });
    const { inputs } = randomCall(p, 1);
    await expect(
      referenceBackend.forward({ ...inputs, q: randomTensor(1, 0, [1, 4, 2, 5]) }, p),
    ).rejects.toThrow(/q\.shape/);
    await expect(referenceBackend.forward(inputs, { ...p, maskType: "padding" })).rejects.toThrow(
      ArgumentError,
    );
    await expect(
      referenceBackend.forward(inputs, { ...p, biasType: "post_scale_bias", biasShape: "1hss" }),
    ).rejects.toThrow(/bias/);
    await expect(referenceBackend.forward(inputs, { ...p, softmaxType: "learnable" })).rejects.toThrow(
      /softmaxOffset/,
    );
  });

  it("computes fp16 and bf16 inputs in float64 and rounds the outputs to the dtype", async () => {
    const p = makeParams({ b: 1, h: 1, d: 4, sq: 3, dtype: "fp16" });
    const { inputs } = randomCall(p, 5);
    const half = (t: HostTensor) => fromFloat64("fp16", t.shape, toFloat64(t));
    const r = await referenceBackend.forward({ q: half(inputs.q), k: half(inputs.k), v: half(inputs.v) }, p);
    expect(r.o.dtype).toBe("fp16");
    expect(r.lse.dtype).toBe("fp32");
    expect(r.o.data).toBeInstanceOf(Uint16Array);
  });
});
