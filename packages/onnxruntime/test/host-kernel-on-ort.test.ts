import { formatCaseResult, makeParams, runConformance, selectBackend } from "@te/core";
import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { configureOrtRuntime, hostKernelOnOrt, ortTe } from "../src/index.js";
import { CONFORMANCE_DIR } from "./conformance-dir.js";

beforeAll(() => configureOrtRuntime({ ort }));

describe("host kernels on ORT tensors (ort.te's adapter)", () => {
  it("runs a host-tensor backend on ORT tensors: the reference, through the adapter, passes the cases", async () => {
    const adapted = hostKernelOnOrt({
      id: "test.reference-on-ort",
      innerId: "reference",
      innerPackage: "@te/core",
      family: "UnfusedDotProductAttention",
    });
    const summary = await runConformance({
      dir: CONFORMANCE_DIR,
      backend: adapted,
      filter: (name) =>
        [
          "base_sbhd",
          "thd_padding_causal",
          "bias_post_1hss",
          "softmax_learnable",
          "mask_arbitrary",
          "alibi_gqa_swa",
        ].includes(name),
    });
    expect(summary.results.filter((r) => r.status !== "pass").map(formatCaseResult)).toEqual([]);
    expect(summary.passed).toBe(6);
  });

  it("ort.te says why it cannot run when native.cpu is not loaded, and selection moves on in TE's order", () => {
    const p = makeParams({ b: 1, h: 2, d: 16, sq: 8, device: "ort" });
    const context = { cudaArch: null, env: {} };
    // This test process never imports @te/native.
    const verdict = ortTe.explain(p, context);
    expect(verdict.ok).toBe(false);
    if (verdict.ok) return;
    expect(verdict.reasons.map((r) => r.rule)).toEqual(["ort.te.not_loaded"]);
    expect(verdict.reasons[0].message).toMatch(/@te\/native/);
    const selection = selectBackend(p);
    expect(selection.verdicts.map((v) => v.id)).toEqual(["ort.te", "ort.fused", "ort.native"]);
    expect(selection.backend.id).toBe("ort.fused");
    expect(selectBackend({ ...p, isTraining: true }).backend.id).toBe("ort.native");
  });
});
