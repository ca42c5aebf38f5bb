import { clearSelectionCache, makeParams, NoBackendError, selectBackend } from "@te/core";
import { beforeEach, describe, expect, it } from "vitest";
import { ortTe } from "../src/index.js";

beforeEach(() => clearSelectionCache());

describe("selection among the ORT backends (this test process never imports @te/native)", () => {
  const p = makeParams({ b: 1, h: 2, d: 16, sq: 8, device: "ort" });

  it("ort.te says why it cannot run without native.cpu", () => {
    const verdict = ortTe.explain(p, { cudaArch: null, env: {} });
    expect(verdict.ok).toBe(false);
    if (verdict.ok) return;
    expect(verdict.reasons.map((r) => r.rule)).toEqual(["ort.te.not_loaded"]);
    expect(verdict.reasons[0].message).toMatch(/@te\/native/);
  });

  it("takes TE's order without CUDA: own kernels, then fused ops, then the framework-native graph", () => {
    const inference = selectBackend(p, { env: {} });
    expect(inference.verdicts.map((v) => v.id)).toEqual(["ort.te", "ort.fused", "ort.native"]);
    expect(inference.backend.id).toBe("ort.fused");
    expect(selectBackend({ ...p, isTraining: true }, { env: {} }).backend.id).toBe("ort.native");
  });

  it("honours TE's controls", () => {
    expect(selectBackend(p, { env: { NVTE_FUSED_ATTN: "0" } }).backend.id).toBe("ort.native");
    try {
      selectBackend({ ...p, isTraining: true }, { env: { NVTE_UNFUSED_ATTN: "0" } });
      expect.unreachable("no backend can run a training call with the unfused family disabled");
    } catch (e) {
      expect(e).toBeInstanceOf(NoBackendError);
      const rules = Object.fromEntries(
        (e as NoBackendError).verdicts.map((v) => [v.id, v.reasons.map((r) => r.rule)]),
      );
      expect(rules).toEqual({
        "ort.te": ["ort.te.not_loaded"],
        "ort.fused": ["ort.fused.training"],
        "ort.native": ["env.disabled"],
      });
    }
  });
});
