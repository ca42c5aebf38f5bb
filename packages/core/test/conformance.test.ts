import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { formatCaseResult, runConformance } from "../src/conformance/index.js";
import { referenceBackend } from "../src/reference/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const casesDir = process.env.TE_CONFORMANCE_DIR ?? path.resolve(here, "../../../conformance/cases");

/** Cases of the quick fp16/bf16 runs: one per feature family. */
const QUICK = [
  "base_d64",
  "base_sbhd",
  "thd_padding_causal",
  "bias_pre",
  "alibi_gqa_swa",
  "softmax_learnable",
  "mask_arbitrary",
];

describe("conformance of the reference backend", () => {
  it("passes every case in fp32 with gradients", async () => {
    const summary = await runConformance({ dir: casesDir, backend: referenceBackend, dtype: "fp32" });
    const failures = summary.results.filter((r) => r.status !== "pass").map(formatCaseResult);
    expect(failures).toEqual([]);
    expect(summary.passed).toBe(summary.results.length);
    expect(summary.results.length).toBeGreaterThanOrEqual(50);
  }, 180_000);

  it("passes every case that packs as 3hd (q, k, v views of one buffer) and skips the others with a reason", async () => {
    const summary = await runConformance({ dir: casesDir, backend: referenceBackend, layoutGroup: "3hd" });
    expect(summary.results.filter((r) => r.status === "fail").map(formatCaseResult)).toEqual([]);
    expect(summary.passed).toBeGreaterThanOrEqual(15);
    const skipped = summary.results.filter((r) => r.status === "skip");
    expect(skipped.map((r) => r.name)).toContain("gqa_4to2");
    expect(skipped.every((r) => r.reasons[0].rule === "conformance.layout")).toBe(true);
  }, 180_000);

  it("passes the GQA and MLA cases with k and v packed as hd_h2d", async () => {
    const summary = await runConformance({
      dir: casesDir,
      backend: referenceBackend,
      layoutGroup: "hd_h2d",
      filter: (name) =>
        ["gqa_4to2", "mqa_causal", "thd_padding_causal", "base_sbhd", "base_mla_dv"].includes(name),
    });
    expect(summary.results.map((r) => [r.name, r.status])).toEqual([
      ["base_mla_dv", "skip"],
      ["base_sbhd", "pass"],
      ["gqa_4to2", "pass"],
      ["mqa_causal", "pass"],
      ["thd_padding_causal", "pass"],
    ]);
  }, 60_000);

  it("passes the thd cases fed with NaN-filled gaps between sequences (cu_seqlens_padded)", async () => {
    const summary = await runConformance({
      dir: casesDir,
      backend: referenceBackend,
      filter: "thd_",
      thdGap: 3,
    });
    expect(summary.results.map(formatCaseResult).filter((l) => !l.startsWith("PASS"))).toEqual([]);
    expect(summary.passed).toBe(2);
  }, 60_000);

  for (const dtype of ["fp16", "bf16"] as const) {
    it(`passes a subset in ${dtype} (inputs quantised, outputs rounded)`, async () => {
      const summary = await runConformance({
        dir: casesDir,
        backend: referenceBackend,
        dtype,
        filter: (name) => QUICK.includes(name),
      });
      expect(summary.results.filter((r) => r.status !== "pass").map(formatCaseResult)).toEqual([]);
      expect(summary.passed).toBe(QUICK.length);
    }, 60_000);
  }
});
