/**
 * Test helpers of the subgroup-matrix programs: a fake device for their eligibility rules, the workgroup bytes a
 * program's WGSL declares, and a compile check of a program with the matrix builtins stood in for
 * (matrix-stand-in.ts) on the test device.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { CALL_UNIFORMS } from "../src/call-layout.js";
import { MATRIX_DIRECTIVES, MATRIX_ENABLES } from "../src/flash/matrix-fragments-wgsl.js";
import type { Binding, Program } from "../src/program.js";
import { programSource } from "../src/program.js";
import { deviceOrReason } from "./adapter.js";
import { matrixStandIn } from "./matrix-stand-in.js";

export const F16_CONFIG = { componentType: "f16", resultComponentType: "f32", M: 16, N: 16, K: 16 };

export function fakeDevice(opts: {
  features?: string[];
  subgroups?: [number, number];
  configs?: object[];
  workgroupBytes?: number;
}): GPUDevice {
  const [min, max] = opts.subgroups ?? [32, 32];
  return {
    features: new Set(opts.features ?? ["subgroups", "shader-f16", "chromium-experimental-subgroup-matrix"]),
    adapterInfo: {
      subgroupMinSize: min,
      subgroupMaxSize: max,
      subgroupMatrixConfigs: opts.configs ?? [F16_CONFIG],
    },
    limits: {
      maxComputeWorkgroupStorageSize: opts.workgroupBytes ?? 49152,
      maxComputeInvocationsPerWorkgroup: 256,
      maxComputeWorkgroupSizeX: 256,
    },
  } as unknown as GPUDevice;
}

/** The bytes of the `var<workgroup>` arrays of f16 and f32 in `code`. */
export function declaredWorkgroupBytes(code: string): number {
  return [...code.matchAll(/var<workgroup> \w+: array<(f16|f32), (\d+)>/g)].reduce(
    (sum, m) => sum + Number(m[2]) * (m[1] === "f16" ? 2 : 4),
    0,
  );
}

/** Bindings by [name, element, access], without buffers: for compiling only. */
export const bindingsOf = (list: [string, string, string][]): Binding[] =>
  list.map(([name, element, access]) => ({ name, element, access, buffer: null }) as unknown as Binding);

/**
 * Compiles the stand-in of `program` on `device` and expects no error: the WGSL (types, scoping, uniformity),
 * then, unless `moduleOnly`, the pipeline (SwiftShader's compiler does not finish programs that keep a
 * prefetched tile in registers: its memory grew until the worker died).
 */
async function expectStandInCompiles(
  device: GPUDevice,
  program: Program,
  moduleOnly: boolean,
): Promise<void> {
  const code = matrixStandIn(programSource(program));
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === "error").map((m) => `${m.lineNum}: ${m.message}`);
  expect(errors).toEqual([]);
  if (!moduleOnly)
    await device.createComputePipelineAsync({ layout: "auto", compute: { module, entryPoint: "main" } });
  expect(await device.popErrorScope()).toBeNull();
}

/**
 * A test per case that the program `make(...case)` names compiles as a stand-in on the test device (skipped,
 * saying why, where the machine has no adapter).
 */
export function describeStandInCompiles<C extends unknown[]>(
  bindings: Binding[],
  cases: C[],
  title: string,
  make: (...c: C) => { name: string; source: () => string; moduleOnly?: boolean },
): void {
  describe("compiles (matrix builtins stood in for) on the test device", () => {
    let device: GPUDevice | null = null;
    let reason = "";
    beforeAll(async () => {
      ({ device, reason } = await deviceOrReason());
    });
    it.each(cases)(title, async (...c) => {
      if (!device) {
        console.warn(`skipped: ${reason}`);
        return;
      }
      const { name, source, moduleOnly = false } = make(...(c as C));
      await expectStandInCompiles(
        device,
        {
          name,
          key: "test",
          source,
          enables: MATRIX_ENABLES,
          directives: MATRIX_DIRECTIVES,
          uniforms: CALL_UNIFORMS,
          uniformValues: {},
          bindings,
          workgroups: [1, 1, 1],
        },
        moduleOnly,
      );
    });
  });
}
