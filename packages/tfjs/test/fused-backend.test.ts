import {
  type CaseResult,
  explainAll,
  formatCaseResult,
  getBackend,
  makeParams,
  runConformance,
} from "@te/core";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createHostKernelBackend, dotProductAttention, tfjsFusedBackend } from "../src/index.js";
import { CONFORMANCE_DIR } from "./conformance-dir.js";

const context = { cudaArch: null, env: {} };

/** Whether TE's CPU kernel is here: @te/native built with its addon (importing it registers native.cpu). */
async function loadNativeCpu(): Promise<boolean> {
  try {
    // A variable specifier: @te/native is optional, and may be unbuilt (no types) when this is typechecked.
    const nativePackage: string = "@te/native";
    await import(/* @vite-ignore */ nativePackage);
  } catch {
    return false;
  }
  return getBackend("native.cpu") !== undefined;
}
const p = makeParams({ b: 1, h: 2, d: 16, sq: 8, device: "tfjs", isTraining: true });

beforeAll(async () => {
  await tf.setBackend("cpu");
});
afterAll(async () => {
  await tf.setBackend("cpu");
});

describe("tfjs.fused", () => {
  test("without @te/native it is refused with a reason, and selection falls back to tfjs.native", () => {
    // (this file imports @te/native only in the last test)
    const verdict = tfjsFusedBackend.explain(p, context);
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) {
      expect(verdict.reasons[0].rule).toBe("tfjs.fused.kernel_missing");
      expect(verdict.reasons[0].message).toMatch(/@te\/native/);
    }
    const verdicts = explainAll(p);
    expect(verdicts.map((v) => v.id)).toEqual(["tfjs.fused", "tfjs.native"]);
    const q = tf.randomNormal([1, 8, 2, 16]);
    expect(
      dotProductAttention(q, q, q, { numAttentionHeads: 2, kvChannels: 16, qkvFormat: "bshd" }).backend,
    ).toBe("tfjs.native");
  });

  // The plumbing (in-place host views of tfjs cpu tensors in, new tf.Tensors out, saved state to backward)
  // checked end to end with the float64 reference standing in for the CPU kernel.
  test("over a host kernel it passes every conformance case with gradients", async () => {
    const overReference = createHostKernelBackend("reference", "tfjs.over-reference");
    const results: CaseResult[] = [];
    const summary = await runConformance({
      dir: CONFORMANCE_DIR,
      backend: overReference,
      onResult: (r) => results.push(r),
    });
    expect(results.filter((r) => r.status !== "pass").map(formatCaseResult)).toEqual([]);
    expect(summary.passed).toBe(50);
  });

  test("is refused on tfjs backends whose memory is not host arrays", async () => {
    const overReference = createHostKernelBackend("reference", "tfjs.over-reference");
    await tf.setBackend("wasm");
    const verdict = overReference.explain(p, context);
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) expect(verdict.reasons[0].rule).toBe("tfjs.over-reference.tfjs_backend");
    await tf.setBackend("cpu");
    expect(overReference.explain(p, context).ok).toBe(true);
  });

  test("over native.cpu (TE's CPU kernel, once @te/native is imported) it passes every conformance case with gradients", async (ctx) => {
    if (!(await loadNativeCpu())) ctx.skip("@te/native is not built here");
    expect(tfjsFusedBackend.explain(p, context).ok).toBe(true);
    const results: CaseResult[] = [];
    const summary = await runConformance({
      dir: CONFORMANCE_DIR,
      backend: tfjsFusedBackend,
      onResult: (r) => results.push(r),
    });
    expect(results.filter((r) => r.status !== "pass").map(formatCaseResult)).toEqual([]);
    expect(summary.passed).toBe(50);
  });
});
