/**
 * Compute programs as plain objects: the WGSL source and what is baked into it (the pipeline cache key), the
 * buffers it binds and the uniform values (shapes, strides, scalars) it reads. Shapes live in uniforms so one
 * compiled pipeline serves every problem size; only head dims, dtypes, tile sizes and feature flags are baked.
 */

import { cachedBindGroup, cachedUniformBuffer } from "./bind-cache.js";
import { takePendingClears } from "./buffer-pool.js";
import { passTimestampWrites } from "./pass-times.js";

/** How a program reads a binding. The declaration order is the binding number. */
export type BindingAccess = "read" | "read_write";
export type WgslScalar = "f32" | "u32" | "i32";

export interface Binding {
  readonly name: string;
  readonly access: BindingAccess;
  /** Element type of the storage array as the shader sees it (16-bit tensors are read as u32 words). */
  readonly element: WgslScalar;
  readonly buffer: GPUBuffer;
}

/** One field of a program's uniform struct `U`. */
export type UniformField = readonly [name: string, type: WgslScalar];

export interface Program {
  /** For error messages and profiling. */
  readonly name: string;
  /** Everything baked into the source: equal keys must give equal WGSL. */
  readonly key: string;
  /** Builds the WGSL body (declarations of bindings and `U` are prepended). Called only on a cache miss. */
  readonly source: () => string;
  readonly uniforms: readonly UniformField[];
  readonly uniformValues: Readonly<Record<string, number>>;
  readonly bindings: readonly Binding[];
  readonly workgroups: readonly [number, number, number];
  /** WGSL extensions the source uses (`enable` directives, which must precede every declaration). */
  readonly enables?: readonly string[];
  /** Global directives after the `enable`s (such as `diagnostic(off, ...)`), each without its semicolon. */
  readonly directives?: readonly string[];
}

/** The program's whole WGSL: enables, directives, the uniform struct and bindings, then its body. */
export function programSource(program: Program): string {
  return declarations(program) + program.source();
}

function declarations(program: Program): string {
  const fields = program.uniforms.map(([name, type]) => `  ${name}: ${type},`).join("\n");
  const lines = [
    `struct Uniforms {\n${fields}\n  _pad: u32,\n}`,
    "@group(0) @binding(0) var<uniform> U: Uniforms;",
  ];
  program.bindings.forEach((b, i) => {
    lines.push(`@group(0) @binding(${i + 1}) var<storage, ${b.access}> ${b.name}: array<${b.element}>;`);
  });
  const enables = (program.enables ?? []).map((e) => `enable ${e};\n`).join("");
  const directives = (program.directives ?? []).map((d) => `${d};\n`).join("");
  return `${enables}${directives}${lines.join("\n")}\n`;
}

function bindingsKey(program: Program): string {
  return program.bindings.map((b) => `${b.name}:${b.access}:${b.element}`).join(",");
}

interface CompiledProgram {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
}

/**
 * Compiled pipelines per device, on globalThis under a registered symbol: every copy of this module in a process
 * (ESM and CJS builds, test files sharing a worker) reuses them, which matters where compiling takes seconds.
 */
const PIPELINES = Symbol.for("@te/webgpu/pipelines");
const globals = globalThis as Record<symbol, unknown>;
globals[PIPELINES] ??= new WeakMap();
const pipelines = globals[PIPELINES] as WeakMap<GPUDevice, Map<string, Promise<CompiledProgram>>>;

/**
 * The program's pipeline, compiled once per device and key. Compilation is asynchronous so that the programs of
 * one submission compile concurrently (SwiftShader takes seconds per flash pipeline).
 */
function compile(device: GPUDevice, program: Program): Promise<CompiledProgram> {
  let cache = pipelines.get(device);
  if (!cache) {
    cache = new Map();
    pipelines.set(device, cache);
  }
  const uniformKey = program.uniforms.map(([n, t]) => `${n}:${t}`).join(",");
  const key = `${program.name}|${program.key}|${(program.enables ?? []).join(",")}|${(program.directives ?? []).join(",")}|${bindingsKey(program)}|${uniformKey}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const code = programSource(program);
  const module = device.createShaderModule({ label: program.name, code });
  const layout = device.createBindGroupLayout({
    label: program.name,
    entries: [
      { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform" } },
      ...program.bindings.map((b, i) => ({
        binding: i + 1,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: b.access === "read" ? ("read-only-storage" as const) : ("storage" as const) },
      })),
    ],
  });
  const compiled = device
    .createComputePipelineAsync({
      label: program.name,
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" },
    })
    .then((pipeline) => ({ pipeline, layout }));
  // A failed compilation is not cached: the error reaches this call, a later call tries again.
  compiled.catch(() => cache.delete(key));
  cache.set(key, compiled);
  return compiled;
}

function uniformBuffer(device: GPUDevice, program: Program): GPUBuffer {
  const words = program.uniforms.length + 1;
  const bytes = Math.ceil((words * 4) / 16) * 16;
  const data = new ArrayBuffer(bytes);
  const u32 = new Uint32Array(data);
  const i32 = new Int32Array(data);
  const f32 = new Float32Array(data);
  program.uniforms.forEach(([name, type], i) => {
    const value = program.uniformValues[name];
    if (value === undefined || Number.isNaN(value))
      throw new Error(`program ${program.name}: uniform ${name} has no value`);
    if (type === "f32") f32[i] = value;
    else if (type === "i32") i32[i] = value;
    else u32[i] = value;
  });
  return cachedUniformBuffer(device, `${program.name}.uniforms`, data);
}

/** A copy between buffers, encoded after a submission's passes. */
export interface BufferCopy {
  readonly from: GPUBuffer;
  readonly fromByte: number;
  readonly to: GPUBuffer;
  readonly bytes: number;
}

/**
 * Runs programs in order in one submission (WebGPU orders the passes' storage accesses), after zeroing the
 * device's pending zeroedBuffers and before `copies`. Validation errors surface as a rejected promise naming
 * the program, rather than as silently wrong results.
 */
export async function runPrograms(
  device: GPUDevice,
  programs: readonly Program[],
  copies: readonly BufferCopy[] = [],
): Promise<void> {
  const active = programs.filter((p) => p.workgroups.every((n) => n > 0));
  let compiled: CompiledProgram[];
  try {
    compiled = await Promise.all(active.map((p) => compile(device, p)));
  } catch (e) {
    throw new Error(
      `WebGPU pipeline creation failed for ${active.map((p) => p.name).join(", ")}: ${(e as Error).message}`,
    );
  }
  device.pushErrorScope("validation");
  device.pushErrorScope("out-of-memory");
  const encoder = device.createCommandEncoder();
  for (const buffer of takePendingClears(device)) encoder.clearBuffer(buffer);
  // One pass for all dispatches (WebGPU orders their storage accesses), unless pass times are being recorded,
  // which time each program's pass.
  let shared: GPUComputePassEncoder | null = null;
  for (const [i, program] of active.entries()) {
    const [x, y, z] = program.workgroups;
    const { pipeline, layout } = compiled[i];
    const uniforms = uniformBuffer(device, program);
    const bindGroup = cachedBindGroup(
      device,
      program.name,
      layout,
      uniforms,
      program.bindings.map((b) => b.buffer),
    );
    const timestampWrites = passTimestampWrites(device, program.name);
    const pass: GPUComputePassEncoder =
      timestampWrites || !shared
        ? encoder.beginComputePass({
            label: timestampWrites ? program.name : "te.programs",
            ...(timestampWrites ? { timestampWrites } : {}),
          })
        : shared;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (timestampWrites) pass.end();
    else shared = pass;
  }
  shared?.end();
  for (const c of copies) encoder.copyBufferToBuffer(c.from, c.fromByte, c.to, 0, c.bytes);
  device.queue.submit([encoder.finish()]);
  const oom = await device.popErrorScope();
  const validation = await device.popErrorScope();
  const error = validation ?? oom;
  if (error) throw new Error(`WebGPU error in ${programs.map((p) => p.name).join(", ")}: ${error.message}`);
}
