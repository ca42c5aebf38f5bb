import { describe, expect, it } from "vitest";
import type { TensorInfo } from "../src/backend.js";
import { paddingMaskFromSeqlens } from "../src/cu-seqlens.js";
import { ArgumentError } from "../src/errors.js";
import { delayedScaling } from "../src/fp8.js";
import { contiguousStrides } from "../src/tensor.js";
import { type AttentionCallInfo, validateAttentionCall } from "../src/validate.js";

const info = (shape: number[], dtype: TensorInfo["dtype"] = "fp32"): TensorInfo => ({
  shape,
  strides: contiguousStrides(shape),
  dtype,
  storage: {},
  offset: 0,
});

// b = 2, sq = 4, skv = 6, h = 4, hg = 2, d = 8, dv = 16
const base: AttentionCallInfo = {
  q: info([2, 4, 4, 8]),
  k: info([2, 6, 2, 8]),
  v: info([2, 6, 2, 16]),
  qkvFormat: "bshd",
  env: {},
};

const thd: AttentionCallInfo = {
  q: info([7, 4, 8]),
  k: info([9, 2, 8]),
  v: info([9, 2, 8]),
  qkvFormat: "thd",
  cuSeqlensQ: Int32Array.from([0, 3, 7]),
  cuSeqlensKv: Int32Array.from([0, 5, 9]),
  env: {},
};

function argumentOf(call: AttentionCallInfo): string {
  const before = JSON.stringify(call, (_, x) => (ArrayBuffer.isView(x) ? Array.from(x as Uint8Array) : x));
  try {
    validateAttentionCall(call);
  } catch (e) {
    expect(JSON.stringify(call, (_, x) => (ArrayBuffer.isView(x) ? Array.from(x as Uint8Array) : x))).toBe(
      before,
    );
    if (!ArgumentError.isInstance(e)) throw e;
    expect(e.message.startsWith(`${(e as ArgumentError).argument}: expected `)).toBe(true);
    return (e as ArgumentError).argument;
  }
  return "(accepted)";
}

describe("validateAttentionCall: accepted calls", () => {
  it("canonicalises a bshd GQA call with dv != d", () => {
    const { params } = validateAttentionCall(base);
    expect(params).toMatchObject({
      qkvLayout: "bshd_bshd_bshd",
      qkvFormat: "bshd",
      dtype: "fp32",
      device: "host",
      b: 2,
      h: 4,
      hg: 2,
      d: 8,
      dv: 16,
      sq: 4,
      skv: 6,
      tq: 8,
      tkv: 12,
      maskType: "no_mask",
      window: [-1, -1],
      bottomRightDiagonal: true,
      biasType: "no_bias",
      biasShape: null,
      alibiSlopes: null,
      softmaxType: "vanilla",
      dropout: 0,
      isTraining: false,
      deterministic: false,
      paddedThd: false,
      fp8: null,
      cpSize: 1,
    });
    expect(params.softmaxScale).toBeCloseTo(1 / Math.sqrt(8), 15);
  });

  it("takes a named layout: packed ones when the views form them, separate ones always", () => {
    const storage = {};
    const view = (offset: number): TensorInfo => ({
      shape: [2, 3, 2, 4],
      strides: [72, 24, 4, 1],
      dtype: "fp32",
      storage,
      offset,
    });
    const packed = { ...base, q: view(0), k: view(8), v: view(16) };
    expect(validateAttentionCall(packed).params.qkvLayout).toBe("bs3hd");
    expect(validateAttentionCall({ ...packed, qkvLayout: "bs3hd" }).params.qkvLayout).toBe("bs3hd");
    expect(validateAttentionCall({ ...packed, qkvLayout: "bshd_bshd_bshd" }).params.qkvLayout).toBe(
      "bshd_bshd_bshd",
    );
  });

  it("turns padding masks into cu_seqlens (one mask for self, a pair for cross)", () => {
    const qMask = paddingMaskFromSeqlens([3, 4], 4);
    const kvMask = paddingMaskFromSeqlens([6, 2], 6);
    const r = validateAttentionCall({
      ...base,
      attnMaskType: "padding_causal",
      attentionMask: [qMask, kvMask],
    });
    expect([...r.cuSeqlensQ!]).toEqual([0, 3, 7]);
    expect([...r.cuSeqlensKv!]).toEqual([0, 6, 8]);
    expect(r.params.window).toEqual([-1, 0]);
    expect(r.params.bottomRightDiagonal).toBe(false);
    const self = validateAttentionCall({
      ...base,
      k: info([2, 4, 2, 8]),
      v: info([2, 4, 2, 16]),
      attnMaskType: "padding",
      attentionMask: qMask,
    });
    expect([...self.cuSeqlensKv!]).toEqual([0, 3, 7]);
  });

  it("thd: lengths from cu_seqlens, max_seqlen defaults to the longest, non-padding masks become padding ones", () => {
    const r = validateAttentionCall({ ...thd, attnMaskType: "causal" });
    expect(r.params).toMatchObject({
      b: 2,
      sq: 4,
      skv: 5,
      tq: 7,
      tkv: 9,
      maskType: "padding_causal",
      qkvLayout: "thd_thd_thd",
    });
    const padded = validateAttentionCall({
      ...thd,
      q: info([8, 4, 8]),
      cuSeqlensQPadded: Int32Array.from([0, 4, 8]),
      maxSeqlenQ: 4,
    });
    expect(padded.params.paddedThd).toBe(true);
    expect(padded.cuSeqlensQPadded).toBeDefined();
  });

  it("bias shapes, ALiBi slopes, env controls, FP8 and dropout fold into params", () => {
    expect(
      validateAttentionCall({
        ...base,
        coreAttentionBiasType: "post_scale_bias",
        coreAttentionBias: info([1, 4, 4, 6]),
      }).params.biasShape,
    ).toBe("1hss");
    expect(
      validateAttentionCall({
        ...base,
        coreAttentionBiasType: "pre_scale_bias",
        coreAttentionBias: info([2, 1, 4, 6]),
      }).params.biasShape,
    ).toBe("b1ss");
    expect(
      validateAttentionCall({
        ...base,
        coreAttentionBiasType: "post_scale_bias",
        coreAttentionBias: info([2, 4, 4, 6]),
        biasRequiresGrad: true,
      }).params,
    ).toMatchObject({ biasShape: "bhss", biasRequiresGrad: true });
    expect(
      validateAttentionCall({
        ...base,
        coreAttentionBiasType: "post_scale_bias",
        coreAttentionBias: info([1, 1, 4, 6]),
      }).params.biasShape,
    ).toBe("11ss");
    expect(validateAttentionCall({ ...base, coreAttentionBiasType: "alibi" }).params.alibiSlopes).toBe(
      "default",
    );
    expect(
      validateAttentionCall({ ...base, coreAttentionBiasType: "alibi", alibiSlopes: new Float32Array(4) })
        .params.alibiSlopes,
    ).toBe("h");
    expect(
      validateAttentionCall({ ...base, coreAttentionBiasType: "alibi", alibiSlopes: new Float64Array(8) })
        .params.alibiSlopes,
    ).toBe("bh");
    expect(
      validateAttentionCall({ ...base, env: { NVTE_ALLOW_NONDETERMINISTIC_ALGO: "0" } }).params.deterministic,
    ).toBe(true);
    const fp8 = validateAttentionCall({
      ...base,
      fp8Recipe: delayedScaling({ fp8Dpa: true }),
      env: { NVTE_FP8_DPA_BWD: "0" },
    }).params.fp8;
    expect(fp8).toEqual({ dpa: true, mha: false, backward: false });
    expect(validateAttentionCall({ ...base, attentionDropout: 0.1 }).params.dropout).toBe(0);
    expect(validateAttentionCall({ ...base, attentionDropout: 0.1, isTraining: true }).params.dropout).toBe(
      0.1,
    );
    expect(
      validateAttentionCall({ ...base, softmaxType: "learnable", softmaxOffset: info([1, 4, 1, 1]) }).params
        .softmaxType,
    ).toBe("learnable");
  });
});

describe("validateAttentionCall: every bad input is an ArgumentError naming the argument", () => {
  const cases: [string, AttentionCallInfo, string][] = [
    ["q rank for bshd", { ...base, q: info([2, 4, 32]) }, "query_layer"],
    ["k rank", { ...base, k: info([2, 6, 16]) }, "key_layer"],
    ["unknown format", { ...base, qkvFormat: "bhsd" }, "qkv_format"],
    ["unknown layout", { ...base, qkvLayout: "bs4hd" }, "qkv_layout"],
    ["layout of another format", { ...base, qkvLayout: "sbhd_sbhd_sbhd" }, "qkv_layout"],
    ["a packed layout the tensors do not form", { ...base, qkvLayout: "bshd_bs2hd" }, "qkv_layout"],
    ["batch mismatch", { ...base, k: info([3, 6, 2, 8]), v: info([3, 6, 2, 16]) }, "key_layer"],
    ["kv seq mismatch", { ...base, v: info([2, 5, 2, 16]) }, "value_layer"],
    ["v heads != k heads", { ...base, v: info([2, 6, 4, 16]) }, "value_layer"],
    ["hg not dividing h", { ...base, k: info([2, 6, 3, 8]), v: info([2, 6, 3, 16]) }, "num_gqa_groups"],
    ["d of k != d of q", { ...base, k: info([2, 6, 2, 4]) }, "key_layer"],
    ["dtype of k", { ...base, k: { ...info([2, 6, 2, 8]), dtype: "fp16" } }, "key_layer.dtype"],
    ["dtype of v", { ...base, v: { ...info([2, 6, 2, 16]), dtype: "bf16" } }, "value_layer.dtype"],
    [
      "fp64 is no storage dtype",
      { ...base, q: { ...info([2, 4, 4, 8]), dtype: "fp64" } },
      "query_layer.dtype",
    ],
    ["num_attention_heads", { ...base, numAttentionHeads: 8 }, "query_layer"],
    ["kv_channels", { ...base, kvChannels: 8 }, "value_layer"],
    ["num_gqa_groups given", { ...base, numGqaGroups: 4 }, "key_layer"],
    ["unknown mask", { ...base, attnMaskType: "sliding" }, "attn_mask_type"],
    ["unknown bias type", { ...base, coreAttentionBiasType: "relative" }, "core_attention_bias_type"],
    ["unknown softmax type", { ...base, softmaxType: "sparsemax" }, "softmax_type"],
    ["window below -1", { ...base, windowSize: [-2, 4] }, "window_size"],
    ["window not a pair", { ...base, windowSize: [4] }, "window_size"],
    ["NaN scale", { ...base, softmaxScale: Number.NaN }, "softmax_scale"],
    ["inf scale", { ...base, softmaxScale: Number.POSITIVE_INFINITY }, "softmax_scale"],
    ["zero scale", { ...base, softmaxScale: 0 }, "softmax_scale"],
    ["negative scale", { ...base, softmaxScale: -1 }, "softmax_scale"],
    ["dropout 1", { ...base, attentionDropout: 1 }, "attention_dropout"],
    ["dropout < 0", { ...base, attentionDropout: -0.1 }, "attention_dropout"],
    ["dropout NaN", { ...base, attentionDropout: Number.NaN }, "attention_dropout"],
    ["bias missing", { ...base, coreAttentionBiasType: "post_scale_bias" }, "core_attention_bias"],
    [
      "bias shape",
      { ...base, coreAttentionBiasType: "post_scale_bias", coreAttentionBias: info([2, 4, 6, 4]) },
      "core_attention_bias",
    ],
    [
      "bias rank",
      { ...base, coreAttentionBiasType: "post_scale_bias", coreAttentionBias: info([4, 6]) },
      "core_attention_bias",
    ],
    [
      "bias dtype",
      { ...base, coreAttentionBiasType: "post_scale_bias", coreAttentionBias: info([1, 4, 4, 6], "fp16") },
      "core_attention_bias.dtype",
    ],
    ["bias with no_bias", { ...base, coreAttentionBias: info([1, 4, 4, 6]) }, "core_attention_bias"],
    [
      "alibi slopes size",
      { ...base, coreAttentionBiasType: "alibi", alibiSlopes: new Float32Array(3) },
      "alibi_slopes",
    ],
    [
      "alibi slopes not finite",
      { ...base, coreAttentionBiasType: "alibi", alibiSlopes: Float32Array.from([1, 1, Number.NaN, 1]) },
      "alibi_slopes",
    ],
    ["alibi slopes without alibi", { ...base, alibiSlopes: new Float32Array(4) }, "alibi_slopes"],
    ["learnable without offset", { ...base, softmaxType: "learnable" }, "softmax_offset"],
    [
      "learnable offset shape",
      { ...base, softmaxType: "learnable", softmaxOffset: info([2]) },
      "softmax_offset",
    ],
    ["offset without learnable", { ...base, softmaxOffset: info([4]) }, "softmax_offset"],
    ["padding without mask or cu_seqlens", { ...base, attnMaskType: "padding" }, "attention_mask"],
    [
      "one padding mask when sq != skv",
      { ...base, attnMaskType: "padding", attentionMask: paddingMaskFromSeqlens([1, 2], 4) },
      "attention_mask",
    ],
    [
      "padding mask shape",
      {
        ...base,
        attnMaskType: "padding",
        attentionMask: [paddingMaskFromSeqlens([1, 2], 5), paddingMaskFromSeqlens([1, 2], 6)],
      },
      "attention_mask",
    ],
    [
      "left-padded mask",
      {
        ...base,
        attnMaskType: "padding",
        attentionMask: [
          { shape: [2, 1, 1, 4], data: Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0]) },
          paddingMaskFromSeqlens([1, 2], 6),
        ],
      },
      "attention_mask",
    ],
    ["arbitrary without mask", { ...base, attnMaskType: "arbitrary" }, "attention_mask"],
    [
      "arbitrary mask shape",
      {
        ...base,
        attnMaskType: "arbitrary",
        attentionMask: { shape: [2, 1, 4, 5], data: new Uint8Array(40) },
      },
      "attention_mask",
    ],
    ["mask for no_mask", { ...base, attentionMask: paddingMaskFromSeqlens([1, 2], 4) }, "attention_mask"],
    [
      "bad padding cu_seqlens",
      {
        ...base,
        attnMaskType: "padding",
        cuSeqlensQ: Int32Array.from([0, 5, 7]),
        cuSeqlensKv: Int32Array.from([0, 6, 8]),
      },
      "cu_seqlens_q",
    ],
    [
      "padded cu_seqlens for bshd",
      { ...base, cuSeqlensQPadded: Int32Array.from([0, 4, 8]) },
      "cu_seqlens_q_padded",
    ],
    ["thd without cu_seqlens_q", { ...thd, cuSeqlensQ: undefined }, "cu_seqlens_q"],
    ["thd without cu_seqlens_kv", { ...thd, cuSeqlensKv: undefined }, "cu_seqlens_kv"],
    ["thd cu_seqlens batch mismatch", { ...thd, cuSeqlensKv: Int32Array.from([0, 9]) }, "cu_seqlens_kv"],
    ["thd cu_seqlens not from 0", { ...thd, cuSeqlensQ: Int32Array.from([1, 3, 7]) }, "cu_seqlens_q"],
    ["thd cu_seqlens decreasing", { ...thd, cuSeqlensQ: Int32Array.from([0, 5, 4]) }, "cu_seqlens_q"],
    ["thd more tokens than rows", { ...thd, cuSeqlensQ: Int32Array.from([0, 3, 8]) }, "cu_seqlens_q"],
    ["thd length over max_seqlen", { ...thd, maxSeqlenQ: 3 }, "cu_seqlens_q"],
    [
      "thd cu_seqlens not Int32Array",
      { ...thd, cuSeqlensQ: [0, 3, 7] as unknown as Int32Array },
      "cu_seqlens_q",
    ],
    [
      "thd padded without room",
      { ...thd, cuSeqlensQPadded: Int32Array.from([0, 2, 7]) },
      "cu_seqlens_q_padded",
    ],
    ["thd arbitrary", { ...thd, attnMaskType: "arbitrary" }, "attn_mask_type"],
    ["thd v tokens", { ...thd, v: info([8, 2, 8]) }, "value_layer"],
    ["cp_size", { ...base, cpSize: 0 }, "cp_size"],
  ];
  for (const [what, call, argument] of cases) {
    it(`${what} -> ${argument}`, () => expect(argumentOf(call)).toBe(argument));
  }
});
