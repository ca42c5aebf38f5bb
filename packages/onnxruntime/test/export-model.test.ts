import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  ArgumentError,
  type AttentionInputs,
  type AttentionParams,
  biasDims,
  CONFORMANCE_TOLERANCES,
  compareValues,
  type HostTensor,
  hostTensor,
  numel,
  referenceBackend,
  toFloat64,
} from "@te/core";
import * as ort from "onnxruntime-node";
import * as ortWeb from "onnxruntime-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ExportAttentionOptions, exportAttentionModel } from "../src/index.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "te-onnx-export-"));
  ortWeb.env.wasm.numThreads = 1;
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const random = (shape: readonly number[]): HostTensor =>
  hostTensor(
    "fp32",
    shape,
    Float32Array.from({ length: numel(shape) }, () => Math.random() * 2 - 1),
  );
const cumulative = (lengths: readonly number[]) =>
  Int32Array.from([0, ...lengths.map((_, i) => lengths.slice(0, i + 1).reduce((a, x) => a + x, 0))]);

/** Random host inputs for the exported model's params, and the feeds of the same values. */
function makeCall(
  p: AttentionParams,
  lengths?: { q: number[]; kv: number[] },
  alibiSlopes?: readonly number[],
) {
  const shapeOf = (which: "q" | "kv", heads: number, dim: number) => {
    if (p.qkvFormat === "thd") return [which === "q" ? p.tq : p.tkv, heads, dim];
    const s = which === "q" ? p.sq : p.skv;
    return p.qkvFormat === "sbhd" ? [s, p.b, heads, dim] : [p.b, s, heads, dim];
  };
  const inputs: AttentionInputs<HostTensor> = {
    q: random(shapeOf("q", p.h, p.d)),
    k: random(shapeOf("kv", p.hg, p.d)),
    v: random(shapeOf("kv", p.hg, p.dv)),
    ...(lengths ? { cuSeqlensQ: cumulative(lengths.q), cuSeqlensKv: cumulative(lengths.kv) } : {}),
    ...(p.biasShape ? { bias: random(biasDims(p.biasShape, p.b, p.h, p.sq, p.skv)) } : {}),
    ...(p.softmaxType === "learnable" ? { softmaxOffset: random([p.h]) } : {}),
    ...(alibiSlopes ? { alibiSlopes: Float64Array.from(alibiSlopes) } : {}),
  };
  const feeds: Record<string, ort.Tensor> = {};
  const tensor = (t: HostTensor) => new ort.Tensor("float32", t.data as Float32Array, [...t.shape]);
  feeds.q = tensor(inputs.q);
  feeds.k = tensor(inputs.k);
  feeds.v = tensor(inputs.v);
  if (inputs.cuSeqlensQ) feeds.cu_seqlens_q = new ort.Tensor("int32", inputs.cuSeqlensQ, [p.b + 1]);
  if (inputs.cuSeqlensKv) feeds.cu_seqlens_kv = new ort.Tensor("int32", inputs.cuSeqlensKv, [p.b + 1]);
  if (inputs.bias) feeds.bias = tensor(inputs.bias);
  if (inputs.softmaxOffset) feeds.softmax_offset = tensor(inputs.softmaxOffset);
  return { inputs, feeds };
}

function expectClose(name: string, got: ort.Tensor, want: HostTensor) {
  expect([...got.dims]).toEqual([...want.shape]);
  const check = compareValues(name, got.data as Float32Array, toFloat64(want), CONFORMANCE_TOLERANCES.fp32);
  expect(
    check.passed,
    `${name}: max error ${check.maxAbsError}, first mismatch ${JSON.stringify(check.firstMismatch)}`,
  ).toBe(true);
}

const FORWARD_CASES: Record<
  string,
  { options: Omit<ExportAttentionOptions, "path">; lengths?: { q: number[]; kv: number[] } }
> = {
  "bshd causal GQA with post-scale bias": {
    options: { b: 2, h: 4, hg: 2, d: 16, sq: 12, mask: "causal", bias: "post_scale_bias", biasShape: "1hss" },
  },
  "sbhd padding_causal cross-attention with custom ALiBi slopes": {
    options: {
      layout: "sbhd_sbhd_sbhd",
      b: 2,
      h: 2,
      d: 8,
      sq: 9,
      skv: 13,
      mask: "padding_causal_bottom_right",
      bias: "alibi",
      alibiSlopes: [0.5, 0.125],
    },
    lengths: { q: [9, 4], kv: [13, 7] },
  },
  "thd padding with learnable softmax and a sliding window": {
    options: {
      layout: "thd_thd_thd",
      b: 3,
      h: 2,
      d: 8,
      sq: 10,
      tq: 17,
      tkv: 17,
      mask: "padding",
      softmaxType: "learnable",
      window: [3, 1],
    },
    lengths: { q: [10, 2, 5], kv: [10, 2, 5] },
  },
  "fused graph (ONNX Attention) with pre-scale bias and bottom-right causal mask": {
    options: {
      graph: "fused",
      b: 2,
      h: 2,
      d: 16,
      dv: 8,
      sq: 6,
      skv: 11,
      mask: "causal_bottom_right",
      bias: "pre_scale_bias",
      biasShape: "b1ss",
    },
  },
  "fused graph (GroupQueryAttention) with off_by_one softmax": {
    options: { graph: "fused", b: 1, h: 4, hg: 1, d: 16, sq: 8, mask: "causal", softmaxType: "off_by_one" },
  },
};

describe("exportAttentionModel", () => {
  for (const [name, { options, lengths }] of Object.entries(FORWARD_CASES)) {
    it(`writes a standalone model that a fresh session runs like the reference: ${name}`, async () => {
      const file = path.join(dir, `${name.replace(/\W+/g, "_")}.onnx`);
      const exported = await exportAttentionModel({ ...options, path: file });
      const session = await ort.InferenceSession.create(file);
      expect([...session.inputNames].sort()).toEqual(exported.inputs.map((x) => x.name).sort());
      expect([...session.outputNames]).toEqual(["o", "lse"]);

      const p = exported.params;
      const { inputs, feeds } = makeCall(p, lengths, options.alibiSlopes as number[] | undefined);
      const out = await session.run(feeds);
      const want = await referenceBackend.forward(inputs, { ...p, device: "host" });
      expectClose("o", out.o, want.o);
      expectClose("lse", out.lse, want.lse);
    });
  }

  it("exports the backward graph, whose gradients match the reference", async () => {
    const options = {
      b: 2,
      h: 2,
      d: 8,
      sq: 7,
      skv: 9,
      mask: "causal_bottom_right",
      bias: "pre_scale_bias",
      biasShape: "11ss",
    } as const;
    const forward = await exportAttentionModel(options);
    const backward = await exportAttentionModel({
      ...options,
      pass: "backward",
      path: path.join(dir, "backward.onnx"),
    });
    const p = backward.params;
    const { inputs, feeds } = makeCall(p);
    const fwd = await (await ort.InferenceSession.create(forward.bytes)).run(feeds);
    const dO = random([p.b, p.sq, p.h, p.dv]);
    const session = await ort.InferenceSession.create(path.join(dir, "backward.onnx"));
    const grads = await session.run({
      ...feeds,
      o: fwd.o,
      lse: fwd.lse,
      d_o: new ort.Tensor("float32", dO.data as Float32Array, [...dO.shape]),
    });
    const hostP = { ...p, device: "host" };
    const ref = await referenceBackend.forward(inputs, hostP);
    const want = await referenceBackend.backward(ref.saved, dO, hostP);
    expectClose("dq", grads.dq, want.dq);
    expectClose("dk", grads.dk, want.dk);
    expectClose("dv", grads.dv, want.dv);
    expectClose("dbias", grads.dbias, want.dbias as HostTensor);
  });

  for (const graph of ["native", "fused"] as const) {
    it(`exports ${graph} inference models without lse on request`, async () => {
      const options = {
        graph,
        b: 2,
        h: 2,
        d: 8,
        sq: 6,
        skv: 4,
        mask: "causal_bottom_right",
        lse: false,
      } as const;
      const exported = await exportAttentionModel(options);
      expect(exported.outputs.map((x) => x.name)).toEqual(["o"]);
      const { inputs, feeds } = makeCall(exported.params);
      const out = await (await ort.InferenceSession.create(exported.bytes)).run(feeds);
      // Query rows 0 and 1 see no key on a bottom-right diagonal with sq > skv: their o must be 0.
      expectClose(
        "o",
        out.o,
        (await referenceBackend.forward(inputs, { ...exported.params, device: "host" })).o,
      );
    });
  }

  it("writes models onnxruntime-web loads too", async () => {
    const exported = await exportAttentionModel({ b: 1, h: 2, d: 8, sq: 5, mask: "causal" });
    const session = await ortWeb.InferenceSession.create(exported.bytes, { executionProviders: ["wasm"] });
    const { inputs } = makeCall(exported.params);
    const web = (t: HostTensor) => new ortWeb.Tensor("float32", t.data as Float32Array, [...t.shape]);
    const out = await session.run({ q: web(inputs.q), k: web(inputs.k), v: web(inputs.v) });
    const want = await referenceBackend.forward(inputs, { ...exported.params, device: "host" });
    expectClose("o", out.o as unknown as ort.Tensor, want.o);
  });

  it("rejects what an exported model cannot express, naming the argument", async () => {
    await expect(exportAttentionModel({ layout: "bs3hd", b: 1, h: 1, d: 8, sq: 4 })).rejects.toSatisfy(
      (e) => ArgumentError.isInstance(e) && (e as ArgumentError).argument === "layout",
    );
    await expect(
      exportAttentionModel({ b: 1, h: 1, d: 8, sq: 4, bias: "post_scale_bias" }),
    ).rejects.toSatisfy((e) => ArgumentError.isInstance(e) && (e as ArgumentError).argument === "biasShape");
    await expect(
      exportAttentionModel({ graph: "fused", pass: "backward", b: 1, h: 1, d: 8, sq: 4 }),
    ).rejects.toThrow(/no backward/);
    await expect(
      exportAttentionModel({ graph: "fused", b: 1, h: 1, d: 8, sq: 4, softmaxType: "learnable" }),
    ).rejects.toThrow(/ort\.fused\.gqa_op\.mask/);
  });
});
