import { type AttentionParams, evaluateRules, makeParams } from "@te/core";
import { describe, expect, it } from "vitest";
import {
  type CudnnRuleContext,
  cudnnBiasOf,
  cudnnRuleContext,
  cudnnRules,
  cudnnVersionString,
  fusedSubBackend,
  needs64BitRaggedOffsets,
} from "../src/backends/cudnn-rules.js";

/** Fake machines: cuDNN 8.9.7, 9.1.0, 9.5.0, 9.19.0 on sm80, sm89, sm90, sm100. */
const V897 = 8907;
const V91 = 90100;
const V95 = 90500;
const V919 = 91900;
const ctx = (
  cudnnVersion: number,
  cudaArch: number | null,
  extra: Partial<CudnnRuleContext> = {},
): CudnnRuleContext => ({
  cudnnVersion,
  cudaArch,
  ...extra,
});

/** A bf16 CUDA call (bshd self-attention, MHA) with the given changes. */
const call = (over: Partial<AttentionParams> = {}): AttentionParams =>
  makeParams({ b: 2, h: 16, d: 64, sq: 1024, device: "cuda", dtype: "bf16", ...over });

const reasonIds = (p: AttentionParams, c: CudnnRuleContext): string[] => {
  const e = evaluateRules(cudnnRules(), p, c);
  return e.ok ? [] : e.reasons.map((r) => r.rule);
};
const messages = (p: AttentionParams, c: CudnnRuleContext): string => {
  const e = evaluateRules(cudnnRules(), p, c);
  return e.ok ? "" : e.reasons.map((r) => r.message).join("; ");
};

/** Rows and sub-backend must agree: eligible exactly when a sub-backend exists and determinism allows it. */
function expectConsistent(p: AttentionParams, c: CudnnRuleContext): void {
  const ok = evaluateRules(cudnnRules(), p, c).ok;
  if (ok) expect(fusedSubBackend(p, c)).not.toBeNull();
  if (fusedSubBackend(p, c) === null) expect(ok).toBe(false);
}

describe("cuDNN versions", () => {
  it("reads cudnnGetVersion integers of cuDNN 8 and 9", () => {
    expect(cudnnVersionString(8907)).toBe("8.9.7");
    expect(cudnnVersionString(90100)).toBe("9.1.0");
    expect(cudnnVersionString(91900)).toBe("9.19.0");
    expect(cudnnVersionString(90201)).toBe("9.2.1");
  });
  it("a missing or too old cuDNN is a reason, not a crash", () => {
    expect(reasonIds(call(), ctx(0, 90))).toContain("cuda.cudnn.library");
    expect(fusedSubBackend(call(), ctx(0, 90))).toBeNull();
    expect(reasonIds(call(), ctx(8600, 90))).toContain("cuda.cudnn.version");
    expect(messages(call(), ctx(8600, 90))).toMatch(/needs cuDNN 8.9.0\+ \(found 8.6.0\)/);
    expect(reasonIds(call(), ctx(V919, null))).toContain("cuda.cudnn.no_gpu");
    expect(reasonIds(call(), ctx(V919, 75))).toContain("cuda.cudnn.arch");
  });
});

describe("sub-backend 1 (F16 arbitrary seqlen) and 0 (F16 max512)", () => {
  it("takes sub-backend 1 for the common bf16/fp16 call on every arch and version", () => {
    for (const v of [V897, V91, V95, V919])
      for (const a of [80, 89, 90]) {
        expect(fusedSubBackend(call(), ctx(v, a))).toBe(1);
        expect(fusedSubBackend(call({ dtype: "fp16", maskType: "causal" }), ctx(v, a))).toBe(1);
      }
  });
  it("sm100 needs cuDNN 9.7+", () => {
    for (const v of [V897, V91, V95]) {
      expect(fusedSubBackend(call(), ctx(v, 100))).toBeNull();
      expect(reasonIds(call(), ctx(v, 100))).toContain("cuda.cudnn.sub1.arch");
    }
    expect(fusedSubBackend(call(), ctx(V919, 100))).toBe(1);
  });
  it("sub-backend 0: F16 max512 where 1 cannot run; NVTE_FUSED_ATTN_BACKEND picks between them", () => {
    // 8.9.7 on sm90: sub-backend 1 has no bottom-right causal; max512 has no bottom-right either.
    const p = call({ sq: 512 });
    expect(fusedSubBackend(p, ctx(V897, 90))).toBe(1);
    expect(fusedSubBackend(p, ctx(V897, 90, { preferredSubBackend: 0 }))).toBe(0);
    expect(fusedSubBackend(p, ctx(V897, 89, { preferredSubBackend: 0 }))).toBe(1); // max512: sm80/sm90 only
    expect(fusedSubBackend(call({ sq: 1024 }), ctx(V897, 90, { preferredSubBackend: 0 }))).toBe(1);
    // 8.9.7 needs sq % 64 == 0 for both; max512 then also needs sq <= 512: nothing for sq = 100.
    expect(fusedSubBackend(call({ sq: 100 }), ctx(V897, 90))).toBeNull();
    expect(fusedSubBackend(call({ sq: 100 }), ctx(V91, 90))).toBe(1);
    // post_scale_bias [1, h, s, s] on sm80 with 8.9.7: only max512 runs it.
    const bias = call({ sq: 256, biasType: "post_scale_bias", biasShape: "1hss" });
    expect(fusedSubBackend(bias, ctx(V897, 80))).toBe(0);
    expect(fusedSubBackend(bias, ctx(V95, 80))).toBe(1);
    expect(fusedSubBackend({ ...bias, biasShape: "bhss" }, ctx(V897, 80))).toBeNull();
  });
  it("a selection's arch and NVTE_FUSED_ATTN_BACKEND make the rule context", () => {
    const c = cudnnRuleContext(V897, { cudaArch: 90, preferredSubBackend: 0 });
    expect(c).toEqual({ cudnnVersion: V897, cudaArch: 90, offersMax512: true, preferredSubBackend: 0 });
    expect(fusedSubBackend(call({ sq: 512 }), c)).toBe(0);
    expect(cudnnRuleContext(V919, { cudaArch: null }, false).preferredSubBackend).toBeNull();
  });
  it("says when sub-backend 0 is not offered", () => {
    const bias = call({ sq: 256, biasType: "post_scale_bias", biasShape: "1hss" });
    const c = ctx(V897, 80, { offersMax512: false });
    expect(fusedSubBackend(bias, c)).toBeNull();
    expect(messages(bias, c)).toMatch(/sub-backend 0 \(F16_max512_seqlen\) is not built: TE removed it/);
  });
  it("head dims: multiples of 8, <= 128; <= 256 on sm90 from 9.1 (inference) and 9.5 (training)", () => {
    const inf = call({ d: 256 });
    const train = call({ d: 256, isTraining: true });
    expect(fusedSubBackend(inf, ctx(V897, 90))).toBeNull();
    expect(fusedSubBackend(inf, ctx(V91, 90))).toBe(1);
    expect(fusedSubBackend(train, ctx(V91, 90))).toBeNull();
    expect(fusedSubBackend(train, ctx(V95, 90))).toBe(1);
    expect(fusedSubBackend(train, ctx(V919, 80))).toBeNull();
    expect(fusedSubBackend(inf, ctx(V919, 80))).toBe(1); // 9.10.2+: any head dim for inference
    expect(fusedSubBackend(call({ d: 60 }), ctx(V919, 90))).toBeNull();
    expect(reasonIds(call({ d: 256, isTraining: true }), ctx(V91, 90))).toContain("cuda.cudnn.sub1.head_dim");
  });
  it("MLA (dv != d): separate q/k/v only; the 9.11+ sm90 backward bug", () => {
    const mla = call({ d: 192, dv: 128, isTraining: true });
    expect(fusedSubBackend(mla, ctx(V919, 90))).toBe(1); // 192/128 is exempt from the bug
    expect(fusedSubBackend(mla, ctx(V919, 100))).toBe(1);
    const bug = call({ d: 256, dv: 128, isTraining: true });
    expect(fusedSubBackend(bug, ctx(V95, 90))).toBe(1);
    expect(reasonIds(bug, ctx(V919, 90))).toContain("cuda.cudnn.sub1.mla_hopper_bwd");
    expect(reasonIds(call({ dv: 32, qkvLayout: "bshd_bs2hd" }), ctx(V919, 90))).toContain(
      "cuda.cudnn.mla_layout",
    );
  });
  it("GQA/MQA from 8.9.7", () => {
    expect(fusedSubBackend(call({ hg: 4 }), ctx(8906, 90))).toBeNull();
    expect(fusedSubBackend(call({ hg: 1 }), ctx(V897, 90))).toBe(1);
  });
  it("masks: arbitrary never; bottom-right causal from 9.3 (sq <= skv); padding + bias never", () => {
    expect(reasonIds(call({ maskType: "arbitrary" }), ctx(V919, 90))).toContain("cuda.cudnn.arbitrary_mask");
    const br = call({ maskType: "causal_bottom_right", sq: 128, skv: 256 });
    expect(fusedSubBackend(br, ctx(V91, 90))).toBeNull();
    expect(reasonIds(br, ctx(V91, 90))).toContain("cuda.cudnn.sub1.mask");
    // 9.2-9.5: the window clause (causal masks carry (-1, 0)) allows bottom-right only with sq = skv.
    expect(fusedSubBackend(br, ctx(V95, 90))).toBeNull();
    expect(fusedSubBackend({ ...br, skv: 128 }, ctx(V95, 90))).toBe(1);
    expect(fusedSubBackend(br, ctx(V919, 90))).toBe(1);
    expect(fusedSubBackend({ ...br, sq: 300, skv: 200 }, ctx(V919, 90))).toBeNull(); // sq > skv
    expect(fusedSubBackend({ ...br, sq: 100, skv: 100 }, ctx(V95, 90))).toBeNull(); // % 64 before 9.7
    expect(fusedSubBackend({ ...br, sq: 100, skv: 200 }, ctx(V919, 90))).toBe(1);
    const pbias = call({ maskType: "padding", biasType: "post_scale_bias", biasShape: "1hss" });
    expect(reasonIds(pbias, ctx(V919, 90))).toContain("cuda.cudnn.sub1.padding_bias");
  });
  it("bias: post_scale_bias sm90 from 8.9.6, sm80 from 9.0; ALiBi sm90 with causal masks; dBias of every shape", () => {
    const post = call({ biasType: "post_scale_bias", biasShape: "bhss" });
    expect(fusedSubBackend(post, ctx(V897, 90))).toBe(1);
    expect(fusedSubBackend(post, ctx(V897, 80))).toBeNull();
    expect(fusedSubBackend(post, ctx(V91, 80))).toBe(1);
    for (const biasShape of ["1hss", "b1ss", "bhss", "11ss"] as const)
      expect(fusedSubBackend({ ...post, biasShape, biasRequiresGrad: true }, ctx(V919, 90))).toBe(1);
    const alibi = call({ biasType: "alibi", alibiSlopes: "default", maskType: "causal" });
    expect(cudnnBiasOf(alibi).type).toBe("alibi");
    expect(fusedSubBackend(alibi, ctx(V919, 90))).toBe(1);
    expect(fusedSubBackend(alibi, ctx(V919, 80))).toBeNull();
    expect(fusedSubBackend({ ...alibi, maskType: "no_mask" }, ctx(V919, 90))).toBeNull();
    // Custom slopes become a [b, h, s, s] post_scale_bias (no gradient): fine on sm80 from 9.0.
    const custom = { ...alibi, alibiSlopes: "bh" as const };
    expect(cudnnBiasOf(custom)).toEqual({ type: "post_scale_bias", shape: "bhss", requiresGrad: false });
    expect(fusedSubBackend({ ...custom, maskType: "no_mask" }, ctx(V919, 80))).toBe(1);
    expect(reasonIds(call({ biasType: "pre_scale_bias", biasShape: "1hss" }), ctx(V919, 90))).toContain(
      "cuda.cudnn.pre_scale_bias",
    );
  });
  it("sliding windows: (left, 0) from 9.2 top-left, (left, right) and bottom-right/padding from 9.6; never with dropout", () => {
    const swa = call({ maskType: "causal", window: [128, 0] });
    expect(fusedSubBackend(swa, ctx(V91, 90))).toBeNull();
    expect(reasonIds(swa, ctx(V91, 90))).toContain("cuda.cudnn.sub1.window");
    expect(fusedSubBackend(swa, ctx(V95, 90))).toBe(1);
    const brSwa = call({ maskType: "causal_bottom_right", window: [128, 0], sq: 256, skv: 512 });
    expect(fusedSubBackend(brSwa, ctx(V95, 90))).toBeNull();
    expect(fusedSubBackend(brSwa, ctx(V919, 90))).toBe(1);
    expect(reasonIds({ ...swa, dropout: 0.1 }, ctx(V919, 90))).toContain("cuda.cudnn.window_dropout");
    expect(fusedSubBackend(call({ window: [64, 64] }), ctx(V919, 90))).toBe(1);
    expect(fusedSubBackend(call({ window: [-1, 64] }), ctx(V919, 90))).toBe(1);
    expect(reasonIds(call({ window: [64, 64] }), ctx(V95, 90))).toContain("cuda.cudnn.sub1.window");
    expect(reasonIds(call({ window: [64, 0], sq: 512, skv: 256 }), ctx(V919, 90))).toContain(
      "cuda.cudnn.window_cross",
    );
    // Causal masks carry right = 0 whatever the params say.
    expect(fusedSubBackend(call({ maskType: "causal", window: [-1, -1] }), ctx(V897, 90))).toBe(1);
  });
  it("thd: sm90+, from 9.1 for MHA and 9.6 for GQA; padding masks", () => {
    const thd = call({ qkvFormat: "thd", maskType: "padding_causal" });
    expect(fusedSubBackend(thd, ctx(V897, 90))).toBeNull();
    expect(fusedSubBackend(thd, ctx(V91, 90))).toBe(1);
    expect(fusedSubBackend(thd, ctx(V919, 89))).toBeNull();
    expect(fusedSubBackend({ ...thd, hg: 4 }, ctx(V95, 90))).toBeNull();
    expect(fusedSubBackend({ ...thd, hg: 4 }, ctx(V919, 90))).toBe(1);
    expect(reasonIds({ ...thd, softmaxType: "off_by_one" }, ctx(V919, 90))).toContain(
      "cuda.cudnn.softmax_thd",
    );
  });
  it("64-bit ragged offsets need 9.5", () => {
    const big = call({ qkvFormat: "thd", maskType: "padding", h: 64, d: 128, tq: 300_000, tkv: 300_000 });
    expect(needs64BitRaggedOffsets(big)).toBe(true);
    expect(needs64BitRaggedOffsets({ ...big, tq: 1000, tkv: 1000 })).toBe(false);
    expect(reasonIds(big, ctx(V91, 90))).toContain("cuda.cudnn.sub1.ragged_offsets");
    expect(fusedSubBackend(big, ctx(V919, 90))).toBe(1);
    // As TE's condition reads, 9.2-9.5 accept padding masks only through the pre-9.2 window branch: none.
    expect(reasonIds(big, ctx(V95, 90))).toContain("cuda.cudnn.sub1.window");
  });
  it("softmax types from 9.13.1; dropout; known-bad versions", () => {
    expect(fusedSubBackend(call({ softmaxType: "learnable" }), ctx(V95, 90))).toBeNull();
    expect(fusedSubBackend(call({ softmaxType: "learnable" }), ctx(V919, 90))).toBe(1);
    expect(fusedSubBackend(call({ dropout: 0.1, isTraining: true }), ctx(V897, 80))).toBe(1);
    expect(reasonIds(call(), ctx(91000, 90))).toContain("cuda.cudnn.sub1.known_bug");
  });
  it("context parallelism: no bottom-right, no causal cross-attention, no ALiBi", () => {
    expect(fusedSubBackend(call({ cpSize: 2, maskType: "causal" }), ctx(V919, 90))).toBe(1);
    expect(reasonIds(call({ cpSize: 2, maskType: "causal_bottom_right" }), ctx(V919, 90))).toContain(
      "cuda.cudnn.cp_bottom_right",
    );
    expect(reasonIds(call({ cpSize: 2, maskType: "causal", skv: 2048 }), ctx(V919, 90))).toContain(
      "cuda.cudnn.cp_causal_cross",
    );
    expect(
      reasonIds(
        call({ cpSize: 2, biasType: "alibi", alibiSlopes: "default", maskType: "causal" }),
        ctx(V919, 90),
      ),
    ).toContain("cuda.cudnn.cp_bias");
  });
});

describe("determinism (NVTE_ALLOW_NONDETERMINISTIC_ALGO=0)", () => {
  const train = call({ isTraining: true, deterministic: true });
  it("sub-backend 1 is deterministic on its workspace path: sm90, no bias gradient", () => {
    expect(evaluateRules(cudnnRules(), train, ctx(V919, 90)).ok).toBe(true);
    expect(reasonIds(train, ctx(V919, 80))).toEqual(["cuda.cudnn.deterministic.workspace_path"]);
    const dbias = {
      ...train,
      biasType: "post_scale_bias" as const,
      biasShape: "1hss" as const,
      biasRequiresGrad: true,
    };
    expect(reasonIds(dbias, ctx(V919, 90))).toContain("cuda.cudnn.deterministic.workspace_path");
    // Inference is never affected.
    expect(evaluateRules(cudnnRules(), { ...train, isTraining: false }, ctx(V919, 80)).ok).toBe(true);
  });
  it("Blackwell training is not deterministic", () => {
    expect(reasonIds(train, ctx(V919, 100))).toContain("cuda.cudnn.deterministic.blackwell");
  });
});

describe("sub-backend 2 (FP8)", () => {
  const fp8 = (over: Partial<AttentionParams> = {}) =>
    call({ d: 128, sq: 1024, fp8: { dpa: true, mha: false, backward: true }, ...over });
  it("needs sm90+ and cuDNN 9.2.1+ (d = 128, no_mask/causal) or 9.7+ (padding, other dims)", () => {
    expect(fusedSubBackend(fp8(), ctx(V919, 90))).toBe(2);
    expect(
      fusedSubBackend(
        fp8({ dtype: "fp8e4m3", fp8: { dpa: true, mha: true, backward: true } }),
        ctx(V919, 90),
      ),
    ).toBe(2);
    expect(fusedSubBackend(fp8(), ctx(V919, 89))).toBeNull();
    expect(reasonIds(fp8(), ctx(V919, 89))).toContain("cuda.cudnn.sub2.arch");
    expect(fusedSubBackend(fp8(), ctx(V91, 90))).toBeNull();
    expect(fusedSubBackend(fp8(), ctx(V95, 90))).toBe(2);
    expect(fusedSubBackend(fp8({ maskType: "padding" }), ctx(V95, 90))).toBeNull();
    expect(fusedSubBackend(fp8({ maskType: "padding" }), ctx(V919, 90))).toBe(2);
    expect(fusedSubBackend(fp8({ d: 64, isTraining: true }), ctx(V919, 90))).toBeNull();
    expect(fusedSubBackend(fp8({ d: 64, isTraining: false }), ctx(V919, 90))).toBe(2);
    expect(fusedSubBackend(fp8({ d: 64, isTraining: true }), ctx(V919, 100))).toBe(2);
  });
  it("no bias, no windows, no thd, no non-vanilla softmax, no determinism in training", () => {
    expect(reasonIds(fp8({ biasType: "post_scale_bias", biasShape: "1hss" }), ctx(V919, 90))).toContain(
      "cuda.cudnn.sub2.bias",
    );
    expect(reasonIds(fp8({ maskType: "causal", window: [64, 0] }), ctx(V919, 90))).toContain(
      "cuda.cudnn.window_fp8",
    );
    expect(reasonIds(fp8({ qkvFormat: "thd", maskType: "padding" }), ctx(V919, 90))).toContain(
      "cuda.cudnn.sub2.format",
    );
    expect(reasonIds(fp8({ softmaxType: "off_by_one" }), ctx(V919, 90))).toContain("cuda.cudnn.sub2.softmax");
    expect(reasonIds(fp8({ isTraining: true, deterministic: true }), ctx(V919, 90))).toContain(
      "cuda.cudnn.deterministic.fp8",
    );
  });
  it("NVTE_FP8_DPA_BWD=0: the F16 backward on sub-backend 1 must be able to run the call", () => {
    const f16Bwd = { dpa: true, mha: false, backward: false };
    expect(evaluateRules(cudnnRules(), fp8({ isTraining: true, fp8: f16Bwd }), ctx(V919, 90)).ok).toBe(true);
    // cuDNN 9.10.1: FP8 attention runs, the F16 arbitrary-seqlen path is disabled (known bugs).
    const p = fp8({ isTraining: true, fp8: f16Bwd });
    expect(reasonIds(p, ctx(91001, 90))).toEqual(["cuda.cudnn.fp8_f16_backward.known_bug"]);
    expect(messages(p, ctx(91001, 90))).toMatch(/NVTE_FP8_DPA_BWD=0 runs backward on sub-backend 1 in F16/);
    expect(evaluateRules(cudnnRules(), fp8({ isTraining: true }), ctx(91001, 90)).ok).toBe(true);
  });
});

describe("rows and sub-backend agree", () => {
  it("on a grid of calls, versions and archs", () => {
    const calls: AttentionParams[] = [];
    for (const maskType of [
      "no_mask",
      "causal",
      "padding",
      "causal_bottom_right",
      "padding_causal_bottom_right",
    ] as const)
      for (const d of [64, 128, 192, 256])
        for (const sq of [100, 512, 2048])
          for (const isTraining of [false, true]) calls.push(call({ maskType, d, sq, skv: sq, isTraining }));
    for (const v of [V897, V91, V95, V919])
      for (const a of [80, 89, 90, 100])
        for (const p of calls) {
          expectConsistent(p, ctx(v, a));
          expectConsistent({ ...p, fp8: { dpa: true, mha: false, backward: true } }, ctx(v, a));
        }
  });
});
