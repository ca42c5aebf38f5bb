// Can webgpu.flash use the tensor cores through Dawn? Probes Dawn's experimental subgroup-matrix feature
// (WGSL `chromium_experimental_subgroup_matrix`, VK_KHR_cooperative_matrix on Vulkan) on this machine:
//   1. per Dawn toggle set: adapter features, subgroup sizes and adapter.info.subgroupMatrixConfigs. Dawn's
//      Vulkan backend drops f16 configurations unless shader-f16 is allowed, and on NVIDIA that needs the
//      adapter toggle vulkan_enable_f16_on_nvidia (PhysicalDeviceVk.cpp, EnumerateSubgroupMatrixConfigs);
//   2. a device with subgroups + shader-f16 + the feature, from the richest toggle set;
//   3. a 64x64x64 f16 x f16 -> f32 GEMM with every f16 configuration, against an exact CPU reference;
//   4. a 4096^3 GEMM in several subgroup-matrix kernels and in a plain f32 SIMT kernel: ms and TFLOP/s,
//      each checked on sampled outputs.
// Self-contained: `node subgroup-matrix-probe.mjs [out.json]` where `webgpu` resolves (the GPU bundle), or with
// TE_WEBGPU_MODULE=/path/to/node_modules/webgpu. Every step is caught and time-limited; the JSON (written after
// every step, so a killed run leaves what it had) records errors and WGSL compile messages.
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const outPath = process.argv[2];
const out = { started: new Date().toISOString(), node: process.version, sets: [], steps: [] };
const save = () => {
  if (outPath) writeFileSync(outPath, JSON.stringify(out, null, 1));
};
const log = (...a) => console.error("[probe]", ...a);

async function loadDawn() {
  const tries = [];
  if (process.env.TE_WEBGPU_MODULE) tries.push(process.env.TE_WEBGPU_MODULE);
  tries.push("webgpu", join(process.cwd(), "packages/webgpu/node_modules/webgpu/index.js"));
  for (const t of tries) {
    try {
      return t === "webgpu" ? await import("webgpu") : createRequire(import.meta.url)(t);
    } catch (e) {
      out.loadErrors = [...(out.loadErrors ?? []), `${t}: ${e.message}`];
    }
  }
  throw new Error("webgpu package not found");
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function step(name, ms, fn) {
  const rec = { name };
  out.steps.push(rec);
  const t0 = performance.now();
  try {
    Object.assign(rec, await withTimeout(Promise.resolve().then(fn), ms, name));
    rec.ok = rec.ok ?? true;
  } catch (e) {
    rec.ok = false;
    rec.error = String(e?.message ?? e);
  }
  rec.s = +((performance.now() - t0) / 1000).toFixed(2);
  log(name, rec.ok ? "ok" : `FAILED ${rec.error}`);
  save();
  return rec;
}

// ---- f16 on the CPU (Node 20 has no Float16Array) ----
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function f16Bits(x) {
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
function f16Value(h) {
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  const s = h & 0x8000 ? -1 : 1;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

// ---- WGSL generators ----
// Subgroup-matrix type parameters are (columns, rows): left<T, K, M> is M x K, right<T, N, K> is K x N,
// result<T, N, M> is M x N (Dawn docs/dawn/features/subgroup_matrix.md).
// Loads/stores: Dawn's current form takes the layout as a template argument,
// subgroupMatrixLoad<T, row_major>(p, offset, stride); the older, deprecated form takes a bool,
// subgroupMatrixLoad<T>(p, offset, col_major, stride). The probe tries the first, then the second.
function mm(syntax) {
  return {
    load: (type, ptr, off, stride) =>
      syntax === "template"
        ? `subgroupMatrixLoad<${type}, row_major>(${ptr}, ${off}, ${stride})`
        : `subgroupMatrixLoad<${type}>(${ptr}, ${off}, false, ${stride})`,
    store: (ptr, off, value, stride) =>
      syntax === "template"
        ? `subgroupMatrixStore<row_major>(${ptr}, ${off}, ${value}, ${stride});`
        : `subgroupMatrixStore(${ptr}, ${off}, ${value}, false, ${stride});`,
  };
}

// The uniformity rule is in Tint's "chromium" namespace (the Dawn doc's chromium_experimental.* is stale;
// this Dawn warns "Possible values: 'chromium.subgroup_matrix_uniformity', ..." for unknown chromium.* rules).
const header = (diag) => `enable f16;
enable chromium_experimental_subgroup_matrix;
${diag ? "diagnostic(off, chromium.subgroup_matrix_uniformity);" : ""}
struct P { m: u32, n: u32, k: u32, pad: u32 }
`;
// Spelled out rather than aliased, in case an alias is not accepted as a builtin's template argument.
const types = (cfg) => ({
  L: `subgroup_matrix_left<f16, ${cfg.K}, ${cfg.M}>`,
  R: `subgroup_matrix_right<f16, ${cfg.N}, ${cfg.K}>`,
  Acc: `subgroup_matrix_result<${cfg.resultComponentType}, ${cfg.N}, ${cfg.M}>`,
});

// One subgroup per workgroup, operands straight from storage: the subgroup owns TM x TN result fragments.
// Every matrix operand depends only on workgroup_id and uniforms, so uniformity analysis accepts it.
function directKernel(cfg, sg, tm, tn, syntax) {
  const { load, store } = mm(syntax);
  const { L, R, Acc } = types(cfg);
  const lines = [];
  for (let i = 0; i < tm; i++) for (let j = 0; j < tn; j++) lines.push(`var acc_${i}_${j}: ${Acc};`);
  const body = [];
  for (let i = 0; i < tm; i++)
    body.push(`let a${i} = ${load(L, "&A", `(row0 + ${i * cfg.M}u) * p.k + k0`, "p.k")};`);
  for (let j = 0; j < tn; j++)
    body.push(`let b${j} = ${load(R, "&B", `k0 * p.n + col0 + ${j * cfg.N}u`, "p.n")};`);
  for (let i = 0; i < tm; i++)
    for (let j = 0; j < tn; j++)
      body.push(`acc_${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, acc_${i}_${j});`);
  const stores = [];
  for (let i = 0; i < tm; i++)
    for (let j = 0; j < tn; j++)
      stores.push(store("&C", `(row0 + ${i * cfg.M}u) * p.n + col0 + ${j * cfg.N}u`, `acc_${i}_${j}`, "p.n"));
  return `${header(false)}
@group(0) @binding(0) var<storage, read> A: array<f16>;
@group(0) @binding(1) var<storage, read> B: array<f16>;
@group(0) @binding(2) var<storage, read_write> C: array<${cfg.resultComponentType}>;
@group(0) @binding(3) var<uniform> p: P;
@compute @workgroup_size(${sg})
fn main(@builtin(workgroup_id) wg: vec3u) {
  let row0 = wg.y * ${tm * cfg.M}u;
  let col0 = wg.x * ${tn * cfg.N}u;
  ${lines.join("\n  ")}
  for (var k0 = 0u; k0 < p.k; k0 += ${cfg.K}u) {
    ${body.join("\n    ")}
  }
  ${stores.join("\n  ")}
}`;
}

// Workgroup of WM x WN subgroups; A (BM x BK) and B (BK x BN) tiles staged in workgroup memory as f16, read
// from storage as vec4<u32> (8 halves per load). With more than one subgroup the fragment offsets depend on
// the subgroup's index (local_invocation_index / subgroup size: NVIDIA fills subgroups in order, and Dawn asks
// for full subgroups), which WGSL's workgroup-scope uniformity analysis cannot prove uniform: the diagnostic
// subgroup_matrix_uniformity is turned off for those (a flash kernel would need the same).
function sharedKernel(cfg, sg, wm, wn, tm, tn, bk, syntax) {
  const { load, store } = mm(syntax);
  const { L, R, Acc } = types(cfg);
  const threads = sg * wm * wn;
  const bm = wm * tm * cfg.M;
  const bn = wn * tn * cfg.N;
  const multi = wm * wn > 1;
  const acc = [];
  for (let i = 0; i < tm; i++) for (let j = 0; j < tn; j++) acc.push(`var acc_${i}_${j}: ${Acc};`);
  const inner = [];
  for (let i = 0; i < tm; i++)
    inner.push(`let a${i} = ${load(L, "&sA", `(sm + ${i * cfg.M}u) * ${bk}u + kk`, `${bk}u`)};`);
  for (let j = 0; j < tn; j++)
    inner.push(`let b${j} = ${load(R, "&sB", `kk * ${bn}u + sn + ${j * cfg.N}u`, `${bn}u`)};`);
  for (let i = 0; i < tm; i++)
    for (let j = 0; j < tn; j++)
      inner.push(`acc_${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, acc_${i}_${j});`);
  const stores = [];
  for (let i = 0; i < tm; i++)
    for (let j = 0; j < tn; j++)
      stores.push(
        store("&C", `(row0 + sm + ${i * cfg.M}u) * p.n + col0 + sn + ${j * cfg.N}u`, `acc_${i}_${j}`, "p.n"),
      );
  const copy = (dst, src, rows, cols, rowExpr, colExpr, ld) => `
    for (var i = li; i < ${(rows * cols) / 8}u; i += ${threads}u) {
      let r = i / ${cols / 8}u;
      let c = (i % ${cols / 8}u) * 8u;
      let w = ${src}[((${rowExpr} + r) * ${ld} + ${colExpr} + c) / 8u];
      let o = r * ${cols}u + c;
      let h0 = bitcast<vec2<f16>>(w.x); let h1 = bitcast<vec2<f16>>(w.y);
      let h2 = bitcast<vec2<f16>>(w.z); let h3 = bitcast<vec2<f16>>(w.w);
      ${dst}[o] = h0.x; ${dst}[o + 1u] = h0.y; ${dst}[o + 2u] = h1.x; ${dst}[o + 3u] = h1.y;
      ${dst}[o + 4u] = h2.x; ${dst}[o + 5u] = h2.y; ${dst}[o + 6u] = h3.x; ${dst}[o + 7u] = h3.y;
    }`;
  return `${header(multi)}
@group(0) @binding(0) var<storage, read> A: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> B: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> C: array<${cfg.resultComponentType}>;
@group(0) @binding(3) var<uniform> p: P;
var<workgroup> sA: array<f16, ${bm * bk}>;
var<workgroup> sB: array<f16, ${bk * bn}>;
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row0 = wg.y * ${bm}u;
  let col0 = wg.x * ${bn}u;
  let sgi = ${multi ? `li / ${sg}u` : "0u"};
  let sm = (sgi / ${wn}u) * ${tm * cfg.M}u;
  let sn = (sgi % ${wn}u) * ${tn * cfg.N}u;
  ${acc.join("\n  ")}
  for (var k0 = 0u; k0 < p.k; k0 += ${bk}u) {${copy("sA", "A", bm, bk, "row0", "k0", "p.k")}${copy("sB", "B", bk, bn, "k0", "col0", "p.n")}
    workgroupBarrier();
    for (var kk = 0u; kk < ${bk}u; kk += ${cfg.K}u) {
      ${inner.join("\n      ")}
    }
    workgroupBarrier();
  }
  ${stores.join("\n  ")}
}`;
}

// Plain f32 SIMT GEMM, the kind of kernel the current webgpu.flash is made of: 64x64 tile, 256 lanes with
// 4x4 outputs each, A and B tiles in workgroup memory.
const simtKernel = `struct P { m: u32, n: u32, k: u32, pad: u32 }
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> C: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> p: P;
var<workgroup> sA: array<array<f32, 64>, 16>;
var<workgroup> sB: array<array<vec4<f32>, 16>, 16>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row0 = wg.y * 64u;
  let col0 = wg.x * 64u;
  let t = lid.y * 16u + lid.x;
  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < p.k; k0 += 16u) {
    for (var e = t; e < 1024u; e += 256u) {
      let r = e / 16u; let c = e % 16u;
      sA[c][r] = A[(row0 + r) * p.k + k0 + c];
    }
    sB[t / 16u][t % 16u] = B[((k0 + t / 16u) * p.n + col0) / 4u + t % 16u];
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let b = sB[kk][lid.x];
      for (var i = 0u; i < 4u; i++) { acc[i] += sA[kk][lid.y * 4u + i] * b; }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) { C[((row0 + lid.y * 4u + i) * p.n + col0) / 4u + lid.x] = acc[i]; }
}`;

// ---- device helpers ----
async function compile(device, code) {
  const module = device.createShaderModule({ code });
  const info = await module.getCompilationInfo();
  const messages = info.messages.map((m) => `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`);
  device.pushErrorScope("validation");
  let pipeline;
  let error;
  try {
    pipeline = await device.createComputePipelineAsync({
      layout: "auto",
      compute: { module, entryPoint: "main" },
    });
  } catch (e) {
    error = String(e?.message ?? e);
  }
  const scoped = await device.popErrorScope();
  if (scoped) error = `${error ?? ""} ${scoped.message}`.trim();
  return { pipeline, messages, error };
}

function makeBuffer(device, data, usage) {
  const size = Math.ceil(data.byteLength / 16) * 16;
  const buf = device.createBuffer({ size, usage, mappedAtCreation: true });
  new Uint8Array(buf.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  buf.unmap();
  return buf;
}

async function readBack(device, buf, bytes) {
  const read = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(buf, 0, read, 0, bytes);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const copy = read.getMappedRange().slice(0);
  read.destroy();
  return copy;
}

// A GEMM problem: A [m, k], B [k, n] row-major, as f16 bits and as the f32 values those bits hold.
function problem(m, n, k, exact) {
  const a16 = new Uint16Array(m * k);
  const b16 = new Uint16Array(k * n);
  let seed = 12345;
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  // exact: multiples of 1/8 in [-1, 1], so products and f32 sums of 64 of them are exact.
  const val = () => (exact ? (Math.floor(rnd() * 17) - 8) / 8 : rnd() * 2 - 1);
  for (let i = 0; i < a16.length; i++) a16[i] = f16Bits(val());
  for (let i = 0; i < b16.length; i++) b16[i] = f16Bits(val());
  const a32 = Float32Array.from(a16, f16Value);
  const b32 = Float32Array.from(b16, f16Value);
  return { m, n, k, a16, b16, a32, b32 };
}

function refAt(pr, r, c) {
  let s = 0;
  for (let x = 0; x < pr.k; x++) s += pr.a32[r * pr.k + x] * pr.b32[x * pr.n + c];
  return s;
}

// Runs pipeline over the problem (grid of workgroups), checks `samples` outputs (all when 0), times `reps`.
async function runGemm(device, pipeline, pr, { f16Inputs, resultF16, grid, reps, samples }) {
  const S = GPUBufferUsage.STORAGE;
  const bufA = makeBuffer(device, f16Inputs ? pr.a16 : pr.a32, S);
  const bufB = makeBuffer(device, f16Inputs ? pr.b16 : pr.b32, S);
  const cBytes = pr.m * pr.n * (resultF16 ? 2 : 4);
  const bufC = device.createBuffer({ size: cBytes, usage: S | GPUBufferUsage.COPY_SRC });
  const bufP = makeBuffer(device, new Uint32Array([pr.m, pr.n, pr.k, 0]), GPUBufferUsage.UNIFORM);
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [bufA, bufB, bufC, bufP].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const dispatch = (count) => {
    const enc = device.createCommandEncoder();
    for (let i = 0; i < count; i++) {
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(grid[0], grid[1]);
      pass.end();
    }
    device.queue.submit([enc.finish()]);
    return device.queue.onSubmittedWorkDone();
  };
  device.pushErrorScope("validation");
  await dispatch(1);
  const err = await device.popErrorScope();
  if (err) throw new Error(`dispatch: ${err.message}`);
  const raw = await readBack(device, bufC, cBytes);
  const got = resultF16 ? Array.from(new Uint16Array(raw), f16Value) : new Float32Array(raw);
  let maxErr = 0;
  let bad = 0;
  let worst;
  const check = (r, c) => {
    const want = refAt(pr, r, c);
    const d = Math.abs(got[r * pr.n + c] - want);
    const tol = resultF16 ? 2e-3 * (1 + Math.abs(want)) : 1e-4 * (1 + Math.abs(want));
    if (!(d <= tol)) {
      bad++;
      worst = worst ?? { r, c, got: got[r * pr.n + c], want };
    }
    if (d > maxErr || Number.isNaN(d)) maxErr = Number.isNaN(d) ? Number.NaN : d;
  };
  if (!samples) for (let r = 0; r < pr.m; r++) for (let c = 0; c < pr.n; c++) check(r, c);
  else {
    let seed = 7;
    for (let i = 0; i < samples; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      const r = seed % pr.m;
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      check(r, seed % pr.n);
    }
    check(pr.m - 1, pr.n - 1);
  }
  const res = { checked: samples || pr.m * pr.n, bad, maxErr, worst, ok: bad === 0 };
  if (reps) {
    await dispatch(1);
    const times = [];
    for (let t = 0; t < 3; t++) {
      const t0 = performance.now();
      await dispatch(reps);
      times.push((performance.now() - t0) / reps);
    }
    const ms = Math.min(...times);
    res.ms = +ms.toFixed(3);
    res.tflops = +((2 * pr.m * pr.n * pr.k) / (ms * 1e-3) / 1e12).toPrecision(3);
  }
  for (const b of [bufA, bufB, bufC, bufP]) b.destroy();
  return res;
}

// TE_PROBE_DUMP=1: print the generated kernels for a 16x16x16 f16 -> f32 configuration and stop (for review).
if (process.env.TE_PROBE_DUMP) {
  const c = { M: 16, N: 16, K: 16, componentType: "f16", resultComponentType: "f32" };
  console.log(directKernel(c, 32, 2, 2, "template"));
  console.log(sharedKernel(c, 32, 2, 2, 2, 2, 32, "template"));
  console.log(sharedKernel(c, 32, 1, 1, 1, 1, 16, "bool"));
  process.exit(0);
}

// ---- the probe ----
const dawn = await loadDawn();
for (const [name, value] of Object.entries(dawn.globals)) if (!(name in globalThis)) globalThis[name] = value;
const extra = process.env.TE_WEBGPU_DAWN_FLAGS ? [process.env.TE_WEBGPU_DAWN_FLAGS] : [];
const toggleSets = [
  [],
  ["enable-dawn-features=allow_unsafe_apis"],
  ["enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia"],
];
if (extra.length) toggleSets.push(extra);
const adapters = [];
for (const toggles of toggleSets) {
  const rec = await step(`adapter ${toggles.join(" ") || "(no toggles)"}`, 15000, async () => {
    const gpu = dawn.create(toggles);
    const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) return { ok: false, error: "no adapter" };
    const info = adapter.info;
    const configs = [...(info.subgroupMatrixConfigs ?? [])].map((c) => ({
      M: c.M,
      N: c.N,
      K: c.K,
      componentType: c.componentType,
      resultComponentType: c.resultComponentType,
    }));
    // gpu stays referenced: once Dawn's instance object is collected, its adapters' devices stop working.
    adapters.push({ toggles, gpu, adapter, configs });
    return {
      toggles,
      vendor: info.vendor,
      device: info.device,
      description: info.description,
      subgroupMinSize: info.subgroupMinSize,
      subgroupMaxSize: info.subgroupMaxSize,
      features: [...adapter.features].sort(),
      subgroupMatrixConfigs: configs,
      maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
    };
  });
  out.sets.push({
    toggles,
    ok: rec.ok,
    matrix: (rec.subgroupMatrixConfigs ?? []).map(
      (c) => `${c.componentType}->${c.resultComponentType} ${c.M}x${c.N}x${c.K}`,
    ),
    f16: rec.features?.includes("shader-f16") ?? false,
    feature: rec.features?.includes("chromium-experimental-subgroup-matrix") ?? false,
  });
}

// The set with the most f16-input configurations (ties: the later, richer set).
const isF16 = (c) => c.componentType === "f16";
let chosen;
for (const a of adapters)
  if (!chosen || a.configs.filter(isF16).length >= chosen.configs.filter(isF16).length) chosen = a;
out.chosenToggles = chosen?.toggles;
let device;
await step("device", 15000, async () => {
  if (!chosen) return { ok: false, error: "no adapter" };
  const want = ["subgroups", "shader-f16", "chromium-experimental-subgroup-matrix"];
  const features = want.filter((f) => chosen.adapter.features.has(f));
  const missing = want.filter((f) => !features.includes(f));
  device = await chosen.adapter.requestDevice({
    requiredFeatures: features,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: chosen.adapter.limits.maxComputeWorkgroupStorageSize,
      maxStorageBufferBindingSize: chosen.adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: chosen.adapter.limits.maxBufferSize,
    },
  });
  device.lost.then((l) => {
    out.deviceLost = `${l.reason}: ${l.message}`;
    save();
  });
  device.addEventListener?.("uncapturederror", (ev) => {
    out.uncaptured = [...(out.uncaptured ?? []), ev.error?.message].slice(0, 10);
  });
  const ok = missing.length === 0;
  return {
    toggles: chosen.toggles,
    features: [...device.features].sort(),
    missing,
    ok,
    error: ok ? undefined : `missing ${missing}`,
  };
});

const sg = chosen?.adapter.info.subgroupMaxSize || 32;
const f16Configs = (chosen?.configs ?? []).filter(isF16);
out.matrixReady = Boolean(device?.features.has("chromium-experimental-subgroup-matrix") && f16Configs.length);
if (device && !out.matrixReady)
  out.matrixSkipped = `no f16 subgroup-matrix configuration on the device (configs: ${JSON.stringify(chosen?.configs ?? [])})`;

// 3. correctness with every f16 configuration, 64x64x64, one result fragment per workgroup
let syntax;
const working = [];
const compiled = [];
if (out.matrixReady) {
  const small = problem(64, 64, 64, true);
  for (const cfg of f16Configs) {
    const tag = `${cfg.componentType}->${cfg.resultComponentType} ${cfg.M}x${cfg.N}x${cfg.K}`;
    await step(`small gemm ${tag}`, 15000, async () => {
      const tried = {};
      for (const s of syntax ? [syntax] : ["template", "bool"]) {
        const c = await compile(device, directKernel(cfg, sg, 1, 1, s));
        tried[s] = { messages: c.messages.slice(0, 4), error: c.error };
        if (!c.pipeline) continue;
        syntax = s;
        compiled.push(cfg);
        const r = await runGemm(device, c.pipeline, small, {
          f16Inputs: true,
          resultF16: cfg.resultComponentType === "f16",
          grid: [64 / cfg.N, 64 / cfg.M],
          reps: 0,
          samples: 0,
        });
        if (r.ok) working.push(cfg);
        return { syntax: s, compile: tried, ...r };
      }
      return { ok: false, compile: tried, error: "no syntax compiled" };
    });
  }
}
out.syntax = syntax;

// 4. timing, 4096^3 (TE_PROBE_GEMM=n for another size)
const size = Number(process.env.TE_PROBE_GEMM || 4096);
const big = device ? problem(size, size, size, false) : undefined;
const reps = 10;
const timed = [];
if (device) {
  await step(`f32 simt gemm ${size}`, 20000, async () => {
    const c = await compile(device, simtKernel);
    if (!c.pipeline) return { ok: false, error: c.error, messages: c.messages };
    const r = await runGemm(device, c.pipeline, big, {
      f16Inputs: false,
      resultF16: false,
      grid: [size / 64, size / 64],
      reps,
      samples: 256,
    });
    timed.push({ kernel: "f32 simt 64x64", ms: r.ms, tflops: r.tflops, ok: r.ok });
    return r;
  });
}
// Timed with a configuration that passed; failing that, one that compiled (its rows then say "bad": the speed
// of the matrix units is still worth knowing while the layout is being sorted out).
const pick = (list) =>
  list.find((c) => c.resultComponentType === "f32" && c.M === 16 && c.N === 16) ??
  list.find((c) => c.resultComponentType === "f32");
const best = pick(working) ?? pick(compiled);
out.timedConfig = best && { ...best, passedSmall: working.includes(best) };
if (best) {
  const variants = [
    { name: "direct 2x2", code: () => directKernel(best, sg, 2, 2, syntax), tile: [2 * best.M, 2 * best.N] },
    { name: "direct 4x2", code: () => directKernel(best, sg, 4, 2, syntax), tile: [4 * best.M, 2 * best.N] },
    {
      name: "shared 1sg 4x4 bk32",
      code: () => sharedKernel(best, sg, 1, 1, 4, 4, 32, syntax),
      tile: [4 * best.M, 4 * best.N],
    },
    {
      name: "shared 2x2sg 2x2 bk32",
      code: () => sharedKernel(best, sg, 2, 2, 2, 2, 32, syntax),
      tile: [4 * best.M, 4 * best.N],
    },
    {
      name: "shared 2x2sg 4x2 bk32",
      code: () => sharedKernel(best, sg, 2, 2, 4, 2, 32, syntax),
      tile: [8 * best.M, 4 * best.N],
    },
  ];
  for (const v of variants) {
    const tag = `${best.M}x${best.N}x${best.K} ${v.name}`;
    await step(`matrix gemm ${size} ${tag}`, 20000, async () => {
      const c = await compile(device, v.code());
      if (!c.pipeline) return { ok: false, error: c.error, messages: c.messages.slice(0, 6) };
      const r = await runGemm(device, c.pipeline, big, {
        f16Inputs: true,
        resultF16: false,
        grid: [size / v.tile[1], size / v.tile[0]],
        reps,
        samples: 256,
      });
      timed.push({ kernel: `f16->f32 ${tag}`, ms: r.ms, tflops: r.tflops, ok: r.ok });
      return r;
    });
  }
}
out.timed = timed;
out.finished = new Date().toISOString();
save();
// One-line summary per fact, for summary.txt.
for (const s of out.sets)
  console.log(
    `set [${s.toggles.join(" ")}]: ${s.ok ? "" : "FAILED "}shader-f16 ${s.f16}, subgroup-matrix ${s.feature}, configs ${s.matrix.join(", ") || "none"}`,
  );
console.log(
  `device (${(out.chosenToggles ?? []).join(" ")}): ${JSON.stringify(out.steps.find((s) => s.name === "device")?.features ?? out.steps.find((s) => s.name === "device")?.error)}`,
);
if (out.matrixSkipped) console.log(`matrix skipped: ${out.matrixSkipped}`);
for (const s of out.steps.filter((x) => x.name.startsWith("small")))
  console.log(
    `${s.name}: ${s.ok ? "PASS" : "FAIL"} syntax ${s.syntax ?? "-"} checked ${s.checked ?? 0} bad ${s.bad ?? "-"} maxErr ${s.maxErr ?? "-"} ${s.error ?? ""} ${s.ok ? "" : JSON.stringify(s.compile ?? {}).slice(0, 600)}`,
  );
for (const s of out.steps.filter((x) => x.name.includes("gemm " + size)))
  console.log(
    `${s.name}: ${s.ok ? "ok" : "FAIL"} ${s.ms ?? "-"} ms ${s.tflops ?? "-"} TFLOP/s bad ${s.bad ?? "-"}/${s.checked ?? "-"} maxErr ${s.maxErr ?? "-"} ${s.error ?? ""} ${s.messages ? JSON.stringify(s.messages).slice(0, 400) : ""}`,
  );
if (out.timedConfig) console.log(`matrix GEMMs timed with ${JSON.stringify(out.timedConfig)}`);
if (out.deviceLost) console.log(`device lost: ${out.deviceLost}`);
// No device.destroy(): it waits for queued work, which a timed-out step may have left running.
process.exit(0);
