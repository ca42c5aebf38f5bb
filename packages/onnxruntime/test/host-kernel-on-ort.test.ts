import { formatCaseResult, runConformance } from "@te/core";
import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { configureOrtRuntime, hostKernelOnOrt } from "../src/index.js";
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
});
