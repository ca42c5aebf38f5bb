import { afterAll, beforeEach, describe, expect, it } from "vitest";
import type { AttentionBackend, TeFamily, TensorBridge } from "../src/backend.js";
import { setLogSink } from "../src/logging.js";
import { type AttentionParams, makeParams, paramsKey } from "../src/params.js";
import { registerBackend, unregisterBackend } from "../src/registry.js";
import { evaluateRules, type Rule } from "../src/rules.js";
import {
  clearSelectionCache,
  explainAll,
  NoBackendError,
  type SelectionOptions,
  selectBackend,
  teRank,
} from "../src/selection.js";

/** Fake backends on their own tensor kind, so the real ones registered by @te/core never take part. */
const KIND = "selection-test";
const bridge: TensorBridge<unknown> = {
  kind: KIND,
  fromHost: async (t) => t,
  toHost: async () => {
    throw new Error("unused");
  },
  info: () => ({ shape: [], dtype: "fp32" }),
  dispose: () => {},
};

const explainCalls: Record<string, number> = {};

function fake(
  id: string,
  family: TeFamily,
  rules: Rule<unknown>[],
  subBackend?: (p: AttentionParams, preferred?: number | null) => number,
): AttentionBackend<unknown> {
  explainCalls[id] = 0;
  return {
    specificationVersion: "v1",
    id,
    family,
    tensors: bridge,
    dtypes: ["fp32", "fp16", "bf16"],
    ...(subBackend && { subBackend }),
    rank: (c) => teRank(family, c.cudaArch),
    explain: (p, c) => {
      explainCalls[id]++;
      return evaluateRules(rules, p, c);
    },
    forward: () => Promise.reject(new Error("not run in selection tests")),
    backward: () => Promise.reject(new Error("not run in selection tests")),
  };
}

const backends = [
  fake("fake.flash", "FlashAttention", [
    { id: "flash.bias", rejects: (p) => p.biasType !== "no_bias", message: "does not support bias" },
  ]),
  // cuDNN's sub-backends: 1 (F16_arbitrary_seqlen), or 0 (F16_max512_seqlen) for short sequences when
  // NVTE_FUSED_ATTN_BACKEND=0 prefers it.
  fake(
    "fake.cudnn",
    "FusedAttention",
    [{ id: "cudnn.d", rejects: (p) => p.d > 256, message: "does not support head dim > 256" }],
    (p, preferred) => (p.sq <= 512 && p.skv <= 512 && preferred === 0 ? 0 : 1),
  ),
  fake("fake.unfused", "UnfusedDotProductAttention", []),
];
for (const b of backends) registerBackend(b);
afterAll(() => {
  for (const b of backends) unregisterBackend(b.id);
  clearSelectionCache();
});
beforeEach(() => clearSelectionCache());

const p = makeParams({ b: 2, h: 4, d: 64, sq: 1024, device: KIND });
const ids = (o: SelectionOptions, params = p) => explainAll(params, o).map((v) => v.id);
const chosen = (o: SelectionOptions, params = p) => selectBackend(params, o).backend.id;

function noBackend(params: AttentionParams, o: SelectionOptions): NoBackendError {
  try {
    selectBackend(params, o);
  } catch (e) {
    if (e instanceof NoBackendError) return e;
    throw e;
  }
  throw new Error("a backend was selected");
}

describe("selection decision table", () => {
  it("TE's candidate order: sm90 cuDNN first, sm80 flash first, no CUDA flash-style first; unfused last", () => {
    expect(ids({ cudaArch: 90, env: {} })).toEqual(["fake.cudnn", "fake.flash", "fake.unfused"]);
    expect(ids({ cudaArch: 100, env: {} })).toEqual(["fake.cudnn", "fake.flash", "fake.unfused"]);
    expect(ids({ cudaArch: 80, env: {} })).toEqual(["fake.flash", "fake.cudnn", "fake.unfused"]);
    expect(ids({ cudaArch: 89, env: {} })).toEqual(["fake.flash", "fake.cudnn", "fake.unfused"]);
    expect(ids({ cudaArch: null, env: {} })).toEqual(["fake.flash", "fake.cudnn", "fake.unfused"]);
    expect(chosen({ cudaArch: 90, env: {} })).toBe("fake.cudnn");
    expect(chosen({ cudaArch: 80, env: {} })).toBe("fake.flash");
  });

  it("each NVTE_* family control disables its family with a reason", () => {
    const cases: [Record<string, string>, string, string][] = [
      [{ NVTE_FLASH_ATTN: "0" }, "fake.flash", "fake.cudnn"],
      [{ NVTE_FUSED_ATTN: "0" }, "fake.cudnn", "fake.flash"],
      [{ NVTE_FLASH_ATTN: "0", NVTE_FUSED_ATTN: "0" }, "fake.flash", "fake.unfused"],
    ];
    for (const [env, disabled, winner] of cases) {
      clearSelectionCache();
      const verdicts = explainAll(p, { cudaArch: 80, env });
      const v = verdicts.find((x) => x.id === disabled)!;
      expect(v.eligible).toBe(false);
      expect(v.reasons.map((r) => r.rule)).toContain("env.disabled");
      expect(chosen({ cudaArch: 80, env })).toBe(winner);
    }
    const e = noBackend(p, {
      cudaArch: 80,
      env: { NVTE_FLASH_ATTN: "0", NVTE_FUSED_ATTN: "0", NVTE_UNFUSED_ATTN: "0" },
    });
    expect(e.message).toMatch(
      /fake\.unfused \(UnfusedDotProductAttention\): disabled by NVTE_UNFUSED_ATTN=0 \[env\.disabled\]/,
    );
  });

  it("NVTE_FUSED_ATTN_BACKEND is a preference between sub-backends, as in TE, never a reason", () => {
    const short = { ...p, sq: 128, skv: 128 };
    const sub = (env: Record<string, string>, params = p) =>
      selectBackend(params, { cudaArch: 90, env }).subBackend;
    expect(sub({}, short)).toBe(1);
    expect(sub({ NVTE_FUSED_ATTN_BACKEND: "0" }, short)).toBe(0);
    expect(sub({ NVTE_FUSED_ATTN_BACKEND: "1" }, short)).toBe(1);
    // Sub-backend 0 cannot run 1024-long sequences: TE keeps its own choice.
    expect(chosen({ cudaArch: 90, env: { NVTE_FUSED_ATTN_BACKEND: "0" } })).toBe("fake.cudnn");
    expect(sub({ NVTE_FUSED_ATTN_BACKEND: "0" })).toBe(1);
    expect(sub({}, short)).toBe(1);
    expect(selectBackend(short, { cudaArch: 90, env: {}, controls: { fusedBackend: 0 } }).subBackend).toBe(0);
  });

  it("options override the environment: controls, backends and exclude", () => {
    expect(chosen({ cudaArch: 90, env: { NVTE_FUSED_ATTN: "0" }, controls: { fused: true } })).toBe(
      "fake.cudnn",
    );
    expect(chosen({ cudaArch: 90, env: {}, controls: { fused: false } })).toBe("fake.flash");
    expect(chosen({ cudaArch: 90, env: {}, backends: ["fake.unfused"] })).toBe("fake.unfused");
    expect(chosen({ cudaArch: 90, env: {}, exclude: ["fake.cudnn", "fake.flash"] })).toBe("fake.unfused");
    const v = explainAll(p, { cudaArch: 90, env: {}, backends: ["fake.unfused"] });
    expect(v.find((x) => x.id === "fake.flash")!.reasons.map((r) => r.rule)).toEqual([
      "options.not_requested",
    ]);
  });

  it("backend rules and dtypes are reasons; the first eligible candidate wins", () => {
    const withBias = { ...p, biasType: "post_scale_bias" as const, biasShape: "1hss" as const };
    expect(chosen({ cudaArch: 80, env: {} }, withBias)).toBe("fake.cudnn");
    const fp8 = { ...p, dtype: "fp8e4m3" as const };
    const e = noBackend(fp8, { cudaArch: 80, env: {} });
    for (const id of ["fake.flash", "fake.cudnn", "fake.unfused"]) expect(e.message).toContain(`${id} (`);
    expect(e.verdicts.every((v) => v.reasons.some((r) => r.rule === "dtype"))).toBe(true);
  });

  it("NoBackendError lists every backend with all its reasons", () => {
    const bad = { ...p, d: 512, biasType: "post_scale_bias" as const, biasShape: "1hss" as const };
    const e = noBackend(bad, { cudaArch: 90, env: {}, exclude: ["fake.unfused"] });
    expect(e.message.split("\n")).toEqual([
      "No attention backend can run this call:",
      "  fake.cudnn (FusedAttention): does not support head dim > 256 [cudnn.d]",
      "  fake.flash (FlashAttention): does not support bias [flash.bias]",
      "  fake.unfused (UnfusedDotProductAttention): excluded in options [options.excluded]",
    ]);
  });

  it("decisions are cached per params and controls", () => {
    const before = explainCalls["fake.cudnn"];
    const a = selectBackend(p, { cudaArch: 90, env: {} });
    const b = selectBackend(p, { cudaArch: 90, env: {} });
    expect(b).toBe(a);
    expect(explainCalls["fake.cudnn"]).toBe(before + 1);
    const c = selectBackend({ ...p, sq: 2048 }, { cudaArch: 90, env: {} });
    expect(c).not.toBe(a);
    expect(explainCalls["fake.cudnn"]).toBe(before + 2);
    selectBackend(p, { cudaArch: 90, env: { NVTE_FLASH_ATTN: "0" } });
    expect(explainCalls["fake.cudnn"]).toBe(before + 3);
  });

  it("the params key tells FP8 modes apart and ignores the order of the params' keys", () => {
    const fp8 = (mha: boolean, backward: boolean) => ({ ...p, fp8: { dpa: true, mha, backward } });
    const keys = [fp8(false, false), fp8(true, false), fp8(false, true), p].map(paramsKey);
    expect(new Set(keys).size).toBe(4);
    const reordered = Object.fromEntries(Object.entries(p).reverse()) as unknown as AttentionParams;
    expect(paramsKey(reordered)).toBe(paramsKey(p));
    expect(paramsKey({ ...p, window: [8, 0] })).not.toBe(paramsKey(p));
    const a = selectBackend(fp8(false, false), { cudaArch: 90, env: {} });
    expect(selectBackend(fp8(true, true), { cudaArch: 90, env: {} })).not.toBe(a);
  });

  it("DEBUG logs name the fused sub-backend, as TE's Available/Selected backend lines do", () => {
    const lines: string[] = [];
    const previous = setLogSink((l) => lines.push(l));
    try {
      selectBackend(p, { cudaArch: 90, env: { NVTE_DEBUG: "1", NVTE_DEBUG_LEVEL: "2" } });
      expect(lines).toContain(
        "[DEBUG | DotProductAttention]: Available backends = {fake.cudnn=True (sub-backend 1), fake.flash=True, fake.unfused=True}",
      );
      expect(lines).toContain(
        "[DEBUG | DotProductAttention]: Selected backend = FusedAttention backend (fake.cudnn, sub-backend 1)",
      );
    } finally {
      setLogSink(previous);
    }
  });

  it("logs in TE's wording: nothing by default, INFO at level 1, DEBUG reasons at level 2", () => {
    const lines: string[] = [];
    const previous = setLogSink((l) => lines.push(l));
    try {
      selectBackend(p, { cudaArch: 90, env: {} });
      expect(lines).toEqual([]);
      clearSelectionCache();
      selectBackend(p, { cudaArch: 90, env: { NVTE_DEBUG: "1", NVTE_DEBUG_LEVEL: "1" } });
      expect(lines).toEqual([
        "[INFO | DotProductAttention]: Running with FusedAttention backend (fake.cudnn, sub-backend 1)",
      ]);
      lines.length = 0;
      clearSelectionCache();
      selectBackend(p, {
        cudaArch: 90,
        env: { NVTE_DEBUG: "1", NVTE_DEBUG_LEVEL: "2", NVTE_FUSED_ATTN: "0" },
      });
      expect(lines[0]).toMatch(/^\[DEBUG \| DotProductAttention\]: Running with config=\{/);
      expect(lines).toContain(
        "[DEBUG | DotProductAttention]: Disabling FusedAttention (fake.cudnn) as it disabled by NVTE_FUSED_ATTN=0",
      );
      expect(lines).toContain(
        "[DEBUG | DotProductAttention]: Available backends = {fake.cudnn=False, fake.flash=True, fake.unfused=True}",
      );
      expect(lines).toContain(
        "[DEBUG | DotProductAttention]: Selected backend = FlashAttention backend (fake.flash)",
      );
      expect(lines[lines.length - 1]).toBe(
        "[INFO | DotProductAttention]: Running with FlashAttention backend (fake.flash)",
      );
    } finally {
      setLogSink(previous);
    }
  });
});
