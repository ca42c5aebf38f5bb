import { makeParams } from "@te/core";
import { describe, expect, it } from "vitest";
import { createCudaBackend, cudaBackendIds } from "../src/backends/cuda-backend.js";
import type { NativeBinding } from "../src/binding.js";

/** A binding whose C families answer explain only (no GPU on CI): what the backend asks is recorded. */
function fakeBinding(families: string, reason = ""): NativeBinding & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    explain: (backend) => {
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
    philox: (c) => c,
    DeviceTensor: class {} as unknown as NativeBinding["DeviceTensor"],
    synchronize: async () => undefined,
  };
}

describe("cuda.flash / cuda.unfused backends (selection side, no GPU)", () => {
  it("registers only the families compiled into the addon", () => {
    expect(cudaBackendIds(fakeBinding("cpu"))).toEqual([]);
    expect(cudaBackendIds(fakeBinding("cpu,cuda.flash,cuda.unfused"))).toEqual([
      "cuda.flash",
      "cuda.unfused",
    ]);
  });

  it("refuses host tensors and bias gradients by rule, before asking the C family", () => {
    const binding = fakeBinding("cpu,cuda.flash");
    const flash = createCudaBackend(binding, "cuda.flash");
    const host = flash.explain(makeParams({ b: 1, h: 2, d: 64, sq: 16, dtype: "bf16" }), {
      cudaArch: 90,
      env: {},
    });
    expect(host.ok).toBe(false);
    expect(host.ok ? [] : host.reasons.map((r) => r.rule)).toContain("cuda.flash.device");
    expect(binding.asked).toEqual([]);
    const grad = flash.explain(
      makeParams({ b: 1, h: 2, d: 64, sq: 16, dtype: "bf16", device: "cuda", biasRequiresGrad: true }),
      { cudaArch: 90, env: {} },
    );
    expect(grad.ok ? [] : grad.reasons.map((r) => r.rule)).toContain("cuda.flash.bias_grad");
  });

  it("passes the C family's reason through as a kernel rule", () => {
    const binding = fakeBinding("cpu,cuda.flash", "cuda.flash has no compiled variant for d=80 dv=80");
    const flash = createCudaBackend(binding, "cuda.flash");
    const v = flash.explain(makeParams({ b: 1, h: 2, d: 80, sq: 16, dtype: "bf16", device: "cuda" }), {
      cudaArch: 90,
      env: {},
    });
    expect(binding.asked).toEqual(["cuda.flash"]);
    expect(v).toEqual({
      ok: false,
      reasons: [{ rule: "cuda.flash.kernel", message: "cuda.flash has no compiled variant for d=80 dv=80" }],
    });
    const ok = createCudaBackend(fakeBinding("cuda.unfused"), "cuda.unfused").explain(
      makeParams({ b: 1, h: 2, d: 80, sq: 16, dtype: "fp32", device: "cuda" }),
      { cudaArch: 90, env: {} },
    );
    expect(ok.ok).toBe(true);
  });
});
