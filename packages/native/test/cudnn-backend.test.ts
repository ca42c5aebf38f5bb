import { makeParams } from "@te/core";
import { describe, expect, it } from "vitest";
import { createCudnnBackend, hasCudnnFamily, loadedCudnnVersion } from "../src/backends/cudnn-backend.js";
import type { NativeBinding } from "../src/binding.js";

/** A binding whose C families answer explain only (no GPU on CI), with a chosen cuDNN version. */
function fakeBinding(
  families: string,
  cudnnVersion?: number,
  reason = "",
): NativeBinding & { asked: string[] } {
  const asked: string[] = [];
  const binding = {
    asked,
    explain: (backend: string) => {
      asked.push(backend);
      return reason;
    },
    forward: async () => undefined,
    backward: async () => undefined,
    enqueueForward: () => undefined,
    enqueueBackward: () => undefined,
    externalMemory: () => ({ liveBytes: 0, reportedBytes: 0 }),
    backends: () => families,
    deviceInfo: () => ({ cudaCompiled: true, devices: [] }),
    philox: (c: Uint32Array) => c,
    DeviceTensor: class {} as unknown as NativeBinding["DeviceTensor"],
    synchronize: async () => undefined,
  };
  return cudnnVersion === undefined ? binding : Object.assign(binding, { cudnnVersion: () => cudnnVersion });
}

const cudaParams = makeParams({
  b: 2,
  h: 4,
  d: 64,
  sq: 128,
  dtype: "bf16",
  device: "cuda",
  maskType: "causal",
});

describe("cuda.cudnn backend (selection side, no GPU)", () => {
  it("is registered only with the C family, and reads the loaded cuDNN version", () => {
    expect(hasCudnnFamily(fakeBinding("cpu,cuda.flash"))).toBe(false);
    expect(hasCudnnFamily(fakeBinding("cpu,cuda.cudnn"))).toBe(true);
    expect(loadedCudnnVersion(fakeBinding("cpu"))).toBe(0);
    expect(loadedCudnnVersion(fakeBinding("cpu", 91900))).toBe(91900);
  });

  it("is the FusedAttention family for fp16/bf16", () => {
    const b = createCudnnBackend(fakeBinding("cpu,cuda.cudnn", 91900));
    expect(b.id).toBe("cuda.cudnn");
    expect(b.family).toBe("FusedAttention");
    expect(b.dtypes).toEqual(["fp16", "bf16"]);
  });

  it("asks TE's cuDNN rules first: without a loadable cuDNN the C family is not asked", () => {
    const binding = fakeBinding("cpu,cuda.cudnn", 0);
    const verdict = createCudnnBackend(binding).explain(cudaParams, { cudaArch: 90, env: {} });
    expect(verdict.ok).toBe(false);
    expect(binding.asked).toEqual([]);
  });

  it("leaves the bias gradient to TE's rules (cuDNN computes dBias), not to the CUDA families' row", () => {
    const binding = fakeBinding("cpu,cuda.cudnn", 91900);
    const biasGrad = { ...cudaParams, biasType: "post_scale_bias" as const, biasShape: "1hss" as const };
    const verdict = createCudnnBackend(binding).explain(
      { ...biasGrad, biasRequiresGrad: true },
      {
        cudaArch: 90,
        env: {},
      },
    );
    expect(verdict).toEqual({ ok: true });
  });

  it("never offers sub-backend 0 (native/cudnn builds no max512 path)", () => {
    const binding = fakeBinding("cpu,cuda.cudnn", 91900);
    // Padding with a [1, h, s, s] bias: TE's sub-backend 1 refuses it, its max512 path would take it.
    const verdict = createCudnnBackend(binding).explain(
      {
        ...cudaParams,
        sq: 256,
        skv: 256,
        maskType: "padding",
        biasType: "post_scale_bias",
        biasShape: "1hss",
      },
      { cudaArch: 90, env: {} },
    );
    const rules = verdict.ok ? [] : verdict.reasons.map((r) => r.rule);
    expect(rules).toContain("cuda.cudnn.sub1.padding_bias");
    expect(rules).toContain("cuda.cudnn.sub0.offered");
    expect(binding.asked).toEqual([]);
  });

  it("then the C family's reasons", () => {
    const binding = fakeBinding("cpu,cuda.cudnn", 91900, "cuda.cudnn: sliding windows are not wired yet");
    const verdict = createCudnnBackend(binding).explain(cudaParams, { cudaArch: 90, env: {} });
    expect(binding.asked).toEqual(["cuda.cudnn"]);
    expect(verdict.ok ? [] : verdict.reasons.map((r) => r.rule)).toEqual(["cuda.cudnn.kernel"]);
  });
});
