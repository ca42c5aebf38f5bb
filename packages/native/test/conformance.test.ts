import path from "node:path";
import { fileURLToPath } from "node:url";
import { type CaseResult, type ConformanceDType, referenceBackend, runConformance } from "@te/core";
import { describe, expect, test } from "vitest";
import { nativeCpuBackend } from "../src/index.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const casesDir = process.env.TE_CONFORMANCE_DIR ?? path.resolve(repoRoot, "conformance/cases");

/**
 * Cases whose expected results (computed from unquantised inputs) even the float64 reference misses
 * after bf16 quantisation: base_large_logits scales q and k by 8, so rounding them to bf16 moves the
 * logits by more than the bf16 tolerance. Checked below, so the list cannot go stale silently.
 */
const QUANTISATION_LIMITED: Partial<Record<ConformanceDType, readonly string[]>> = {
  bf16: ["base_large_logits"],
};

const describeFailure = (r: CaseResult) =>
  `${r.name}: ${r.status} ${r.error ?? ""} ${r.reasons.map((x) => x.message).join("; ")} ${r.checks
    .filter((c) => !c.passed)
    .map((c) => `${c.tensor} max err ${c.maxAbsError}`)
    .join(", ")}`;

describe("native.cpu conformance", () => {
  const backend = nativeCpuBackend();
  for (const dtype of ["fp32", "fp16", "bf16"] as ConformanceDType[]) {
    const limited = QUANTISATION_LIMITED[dtype] ?? [];
    test(`every case in ${dtype}, with gradients`, async () => {
      const summary = await runConformance({ dir: casesDir, backend, dtype, gradients: true });
      const failures = summary.results.filter((r) => r.status !== "pass" && !limited.includes(r.name));
      expect(failures.map(describeFailure)).toEqual([]);
      expect(summary.results.length).toBeGreaterThanOrEqual(50);
    });
    if (limited.length > 0) {
      test(`the ${dtype} exceptions fail for the float64 reference too`, async () => {
        const filter = (name: string) => limited.includes(name);
        const ref = await runConformance({ dir: casesDir, backend: referenceBackend, dtype, filter });
        expect(ref.results.map((r) => [r.name, r.status])).toEqual(limited.map((n) => [n, "fail"]));
      });
    }
  }
});
