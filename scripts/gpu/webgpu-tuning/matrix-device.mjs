// Shared by the subgroup-matrix scripts of this folder: loading Dawn's `webgpu` package, time limits, f16 on the
// CPU (Node 20 has no Float16Array) and a device with subgroups + shader-f16 + subgroup matrices.
import { createRequire } from "node:module";
import { join } from "node:path";

// Dawn's `webgpu` package: TE_WEBGPU_MODULE, the bundle's node_modules, or the checkout's packages/webgpu.
export async function loadDawn(out = {}) {
  for (const t of [
    process.env.TE_WEBGPU_MODULE,
    "webgpu",
    join(process.cwd(), "packages/webgpu/node_modules/webgpu/index.js"),
  ]) {
    if (!t) continue;
    try {
      return t === "webgpu" ? await import("webgpu") : createRequire(import.meta.url)(t);
    } catch (e) {
      out.loadErrors = [...(out.loadErrors ?? []), `${t}: ${e.message}`];
    }
  }
  throw new Error("webgpu package not found");
}

export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
// f16 bits of x, round to nearest even, subnormals and infinities included.
export function f16Bits(x) {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

export function f16Value(h) {
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  const s = h & 0x8000 ? -1 : 1;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

// The Dawn toggles under which the H200's adapter lists f16 subgroup-matrix configurations
// (subgroup-matrix-probe.mjs found them).
export const MATRIX_TOGGLES = ["enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia"];

// A device with subgroups, shader-f16 and subgroup matrices and an f16 x f16 -> f32 16x16x16 configuration, or
// { device: undefined } with out.skipped saying why. `selfTest` asks for a plain device (no features).
export async function openMatrixDevice(out, { selfTest = false } = {}) {
  const dawn = await loadDawn(out);
  for (const [name, v] of Object.entries(dawn.globals)) if (!(name in globalThis)) globalThis[name] = v;
  // kept referenced from out's owner: a collected instance takes its devices with it
  const gpu = dawn.create(MATRIX_TOGGLES);
  globalThis.__teMatrixGpu = gpu;
  try {
    const adapter = await withTimeout(
      gpu.requestAdapter({ powerPreference: "high-performance" }),
      15000,
      "adapter",
    );
    const configs = [...(adapter.info.subgroupMatrixConfigs ?? [])].map(
      (c) => `${c.componentType}->${c.resultComponentType} ${c.M}x${c.N}x${c.K}`,
    );
    const info = {
      description: adapter.info.description,
      configs,
      subgroupMaxSize: adapter.info.subgroupMaxSize,
    };
    const want = selfTest ? [] : ["subgroups", "shader-f16", "chromium-experimental-subgroup-matrix"];
    const missing = want.filter((f) => !adapter.features.has(f));
    if (missing.length) throw new Error(`adapter lacks ${missing}`);
    if (!selfTest && !configs.includes("f16->f32 16x16x16"))
      throw new Error(`no f16->f32 16x16x16 configuration (${configs})`);
    const device = await withTimeout(
      adapter.requestDevice({
        requiredFeatures: want,
        requiredLimits: {
          maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
          maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
          maxBufferSize: adapter.limits.maxBufferSize,
          maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
          maxComputeWorkgroupSizeX: adapter.limits.maxComputeWorkgroupSizeX,
        },
      }),
      15000,
      "device",
    );
    device.lost.then((x) => {
      out.deviceLost = `${x.reason}: ${x.message}`;
    });
    return { device, info };
  } catch (e) {
    out.skipped = String(e?.message ?? e);
    return { device: undefined, info: undefined };
  }
}
