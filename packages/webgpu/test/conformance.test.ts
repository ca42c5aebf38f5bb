/**
 * Every conformance case against webgpu.flash and webgpu.unfused in fp32 with gradients, and webgpu.flash in
 * fp16 (with gradients) and bf16 (16-bit storage works on every adapter: elements are unpacked from 32-bit
 * words). On CPU-only machines the kernels run on SwiftShader, whose compilation of the three big flash
 * pipelines per head-dim class takes most of this file's time. TE_CONFORMANCE_DIR overrides the cases' location.
 *
 * A 16-bit case may only fail where the float64 reference fails it too with the same quantised inputs: the
 * expected files hold results of the float32 inputs, and bf16 rounding of base_large_logits' inputs alone moves
 * o and lse past FORMAT.md's bf16 tolerance.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type ConformanceDType, formatCaseResult, referenceBackend, runConformance } from "@te/core";
import { beforeAll, describe, expect, it } from "vitest";
import { webgpuFlash, webgpuUnfused } from "../src/index.js";
import { deviceOrReason } from "./adapter.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const casesDir = process.env.TE_CONFORMANCE_DIR ?? path.resolve(repoRoot, "conformance/cases");

let device: GPUDevice | null = null;
let reason = "";
beforeAll(async () => {
  ({ device, reason } = await deviceOrReason());
});

const runs: [typeof webgpuFlash, ConformanceDType, boolean][] = [
  [webgpuFlash, "fp32", true],
  [webgpuUnfused, "fp32", true],
  [webgpuFlash, "fp16", true],
  [webgpuFlash, "bf16", false],
];

describe.each(runs)("conformance", (backend, dtype, gradients) => {
  it(`${backend.id} ${dtype}${gradients ? " with gradients" : ""}`, async (ctx) => {
    if (!device) {
      ctx.skip(reason);
      return;
    }
    const started = Date.now();
    const lines: string[] = [];
    const summary = await runConformance({ dir: casesDir, backend, dtype, gradients, onResult: (r) => lines.push(formatCaseResult(r)) });
    const failed = summary.results.filter((r) => r.status === "fail").map((r) => r.name);
    console.log(
      `${backend.id} ${dtype}: ${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    for (const l of lines.filter((x) => !x.startsWith("PASS"))) console.log(`  ${l}`);
    let allowed: string[] = [];
    if (dtype !== "fp32" && failed.length > 0) {
      const names = new Set(failed);
      const reference = await runConformance({ dir: casesDir, backend: referenceBackend, dtype, gradients, filter: (n) => names.has(n) });
      allowed = reference.results.filter((r) => r.status === "fail").map((r) => r.name);
      console.log(`  the float64 reference fails ${allowed.join(", ") || "none of them"} in ${dtype} as well`);
    }
    expect(failed.filter((n) => !allowed.includes(n))).toEqual([]);
    expect(summary.passed).toBeGreaterThan(0);
  });
});
