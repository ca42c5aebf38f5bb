// Which subgroup-matrix operation does the attention prototype get wrong? Exact unit checks of every operation
// subgroup-matrix-attention.mjs uses that subgroup-matrix-probe.mjs's GEMM does not (the GEMM passes):
//   right_col_major_wg   K^T fragment loaded col_major from a workgroup copy of K (the score GEMM's B)
//   right_row_major_wg   V fragment loaded row_major from workgroup memory (the P V GEMM's B)
//   left_row_major_st    Q fragment loaded row_major from an f16 storage buffer at a row offset
//   scores_wg_lanes      S = Q K^T for a 16 x 64 tile, stored to f32 workgroup memory, read back by lanes
//   left_from_lane_wg    P written by lanes as f16 into workgroup memory, loaded as a left fragment
//   loop_var_zeroed      a result fragment declared (no initialiser) inside a loop, stored to storage: on the H200
//                        (Dawn of the webgpu package, NVIDIA 580) it is NOT zeroed per iteration, it keeps the
//                        previous iteration's sum (the attention prototype's bug)
//   loop_var_explicit_zero  the same with `var s = A();`
//   pv_result_st         O = P V with P from lanes and V from workgroup memory, stored to f32 storage
//   acc_roundtrip_wg     a result fragment stored to workgroup memory, scaled by lanes, loaded back, stored
// Every value is a small multiple of 1/8 (exact in f16; every product and sum exact in f32), so each check
// wants bit-exact equality and prints the first mismatches (index, got, want).
// `node subgroup-matrix-layout.mjs [out.json]` where `webgpu` resolves (GPU bundle) or with TE_WEBGPU_MODULE.
import { writeFileSync } from "node:fs";
import { f16Bits, f16Value, openMatrixDevice, withTimeout } from "./matrix-device.mjs";

const outPath = process.argv[2];
const out = { started: new Date().toISOString(), checks: [] };
const save = () => outPath && writeFileSync(outPath, JSON.stringify(out, null, 1));

const D = 64; // head dim of the tiles
const BKV = 64; // keys per tile
const value = (i, salt) => (((i * 7 + salt * 13) % 17) - 8) / 8; // in [-1, 1], multiples of 1/8
const Q = Float64Array.from({ length: 16 * D }, (_, i) => value(i, 1));
const K = Float64Array.from({ length: BKV * D }, (_, i) => value(i, 2));
const V = Float64Array.from({ length: BKV * D }, (_, i) => value(i, 3));
const P = Float64Array.from({ length: 16 * BKV }, (_, i) => value(i, 4)); // what lanes write as "P"

const header = `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read> Qh: array<f16>;
@group(0) @binding(1) var<storage, read> K: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> V: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> Ph: array<f16>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
@group(0) @binding(5) var<storage, read_write> Oh: array<f16>;
var<workgroup> sK: array<f16, ${BKV * D}>;
var<workgroup> sV: array<f16, ${BKV * D}>;
var<workgroup> sS: array<f32, ${16 * BKV}>;
var<workgroup> sP: array<f16, ${16 * BKV}>;
var<workgroup> sO: array<f32, ${16 * D}>;
fn copyKV(li: u32) {
  for (var i = li; i < ${(BKV * D) / 8}u; i += 32u) {
    let o = i * 8u;
    let k = K[i];
    let v = V[i];
    let k0 = bitcast<vec2<f16>>(k.x); let k1 = bitcast<vec2<f16>>(k.y);
    let k2 = bitcast<vec2<f16>>(k.z); let k3 = bitcast<vec2<f16>>(k.w);
    sK[o] = k0.x; sK[o + 1u] = k0.y; sK[o + 2u] = k1.x; sK[o + 3u] = k1.y;
    sK[o + 4u] = k2.x; sK[o + 5u] = k2.y; sK[o + 6u] = k3.x; sK[o + 7u] = k3.y;
    let v0 = bitcast<vec2<f16>>(v.x); let v1 = bitcast<vec2<f16>>(v.y);
    let v2 = bitcast<vec2<f16>>(v.z); let v3 = bitcast<vec2<f16>>(v.w);
    sV[o] = v0.x; sV[o + 1u] = v0.y; sV[o + 2u] = v1.x; sV[o + 3u] = v1.y;
    sV[o + 4u] = v2.x; sV[o + 5u] = v2.y; sV[o + 6u] = v3.x; sV[o + 7u] = v3.y;
  }
}
alias L = subgroup_matrix_left<f16, 16, 16>;
alias R = subgroup_matrix_right<f16, 16, 16>;
alias A = subgroup_matrix_result<f32, 16, 16>;
`;
const kernel = (body) => `${header}
@compute @workgroup_size(32)
fn main(@builtin(local_invocation_index) li: u32, @builtin(subgroup_invocation_id) lane: u32) {
  copyKV(li);
  for (var i = li; i < ${16 * BKV}u; i += 32u) { sP[i] = Ph[i]; }
  workgroupBarrier();
  ${body}
}`;

// Each check: WGSL body, output kind (f16 via Oh or f32 via O), and the expected output.
const at = (m, cols, r, c) => m[r * cols + c];
const grid = (rows, cols, f) =>
  Float64Array.from({ length: rows * cols }, (_, i) => f(Math.floor(i / cols), i % cols));
const checks = [
  {
    name: "right_col_major_wg",
    out: "f16",
    body: "subgroupMatrixStore<row_major>(&Oh, 0u, subgroupMatrixLoad<R, col_major>(&sK, 16u * 64u + 32u, 64u), 16u);",
    // element (r, c) of the fragment at offset j*16*D + k*16 (j = 1, k = 2) is K[16 j + c][16 k + r]
    want: grid(16, 16, (r, c) => at(K, D, 16 + c, 32 + r)),
  },
  {
    name: "right_row_major_wg",
    out: "f16",
    body: "subgroupMatrixStore<row_major>(&Oh, 0u, subgroupMatrixLoad<R, row_major>(&sV, 16u * 64u + 32u, 64u), 16u);",
    want: grid(16, 16, (r, c) => at(V, D, 16 + r, 32 + c)),
  },
  {
    name: "left_row_major_st",
    out: "f16",
    body: "subgroupMatrixStore<row_major>(&Oh, 0u, subgroupMatrixLoad<L, row_major>(&Qh, 3u * 64u + 16u, 64u), 16u);",
    // the 16 x 16 block of Q starting at row 3, column 16 (rows past 15 read Q's next rows: Q has 16 rows, so
    // the block stops at row 15 + 3 = 18 > 15; the buffer is padded with P's values, so compare 13 rows only)
    want: grid(13, 16, (r, c) => at(Q, D, 3 + r, 16 + c)),
    rows: 13,
  },
  {
    name: "scores_wg_lanes",
    out: "f32",
    body: `var s: array<A, 4>;
  for (var j = 0u; j < 4u; j++) {
    for (var k = 0u; k < 4u; k++) {
      s[j] = subgroupMatrixMultiplyAccumulate(subgroupMatrixLoad<L, row_major>(&Qh, k * 16u, 64u),
        subgroupMatrixLoad<R, col_major>(&sK, j * 16u * 64u + k * 16u, 64u), s[j]);
    }
    subgroupMatrixStore<row_major>(&sS, j * 16u, s[j], 64u);
  }
  workgroupBarrier();
  for (var i = lane; i < ${16 * BKV}u; i += 32u) { O[i] = sS[i]; }`,
    want: grid(16, BKV, (r, c) => {
      let acc = 0;
      for (let x = 0; x < D; x++) acc += at(Q, D, r, x) * at(K, D, c, x);
      return acc;
    }),
  },
  {
    name: "loop_var_zeroed",
    out: "f32",
    body: `for (var j = 0u; j < 4u; j++) {
    var s: A; // WGSL zero-initialises this every iteration
    for (var k = 0u; k < 4u; k++) {
      s = subgroupMatrixMultiplyAccumulate(subgroupMatrixLoad<L, row_major>(&Qh, k * 16u, 64u),
        subgroupMatrixLoad<R, col_major>(&sK, j * 16u * 64u + k * 16u, 64u), s);
    }
    subgroupMatrixStore<row_major>(&O, j * 16u, s, 64u);
  }`,
    want: grid(16, BKV, (r, c) => {
      let acc = 0;
      for (let x = 0; x < D; x++) acc += at(Q, D, r, x) * at(K, D, c, x);
      return acc;
    }),
  },
  {
    name: "loop_var_explicit_zero",
    out: "f32",
    body: `for (var j = 0u; j < 4u; j++) {
    var s = A();
    for (var k = 0u; k < 4u; k++) {
      s = subgroupMatrixMultiplyAccumulate(subgroupMatrixLoad<L, row_major>(&Qh, k * 16u, 64u),
        subgroupMatrixLoad<R, col_major>(&sK, j * 16u * 64u + k * 16u, 64u), s);
    }
    subgroupMatrixStore<row_major>(&O, j * 16u, s, 64u);
  }`,
    want: grid(16, BKV, (r, c) => {
      let acc = 0;
      for (let x = 0; x < D; x++) acc += at(Q, D, r, x) * at(K, D, c, x);
      return acc;
    }),
  },
  {
    name: "left_from_lane_wg",
    out: "f16",
    body: "subgroupMatrixStore<row_major>(&Oh, 0u, subgroupMatrixLoad<L, row_major>(&sP, 32u, 64u), 16u);",
    want: grid(16, 16, (r, c) => at(P, BKV, r, 32 + c)),
  },
  {
    name: "pv_result_st",
    out: "f32",
    body: `for (var n = 0u; n < 4u; n++) {
    var o = A();
    for (var j = 0u; j < 4u; j++) {
      o = subgroupMatrixMultiplyAccumulate(subgroupMatrixLoad<L, row_major>(&sP, j * 16u, 64u),
        subgroupMatrixLoad<R, row_major>(&sV, j * 16u * 64u + n * 16u, 64u), o);
    }
    subgroupMatrixStore<row_major>(&O, n * 16u, o, 64u);
  }`,
    want: grid(16, D, (r, c) => {
      let acc = 0;
      for (let j = 0; j < BKV; j++) acc += at(P, BKV, r, j) * at(V, D, j, c);
      return acc;
    }),
  },
  {
    name: "acc_roundtrip_wg",
    out: "f32",
    body: `var o: A;
  for (var j = 0u; j < 4u; j++) {
    o = subgroupMatrixMultiplyAccumulate(subgroupMatrixLoad<L, row_major>(&sP, j * 16u, 64u),
      subgroupMatrixLoad<R, row_major>(&sV, j * 16u * 64u, 64u), o);
  }
  subgroupMatrixStore<row_major>(&sO, 0u, o, 64u);
  workgroupBarrier();
  for (var i = lane; i < 256u; i += 32u) { let r = i / 16u; let c = i % 16u; sO[r * 64u + c] *= f32(r + 1u); }
  workgroupBarrier();
  let back = subgroupMatrixLoad<A, row_major>(&sO, 0u, 64u);
  subgroupMatrixStore<row_major>(&O, 0u, back, 16u);`,
    want: grid(16, 16, (r, c) => {
      let acc = 0;
      for (let j = 0; j < BKV; j++) acc += at(P, BKV, r, j) * at(V, D, j, c);
      return acc * (r + 1);
    }),
  },
];

const { device, info } = await openMatrixDevice(out);
out.adapter = info;
if (device) {
  const S = GPUBufferUsage.STORAGE;
  const upload = (bits) => {
    const buf = device.createBuffer({
      size: Math.ceil(bits.byteLength / 16) * 16 + 4096,
      usage: S,
      mappedAtCreation: true,
    });
    new Uint16Array(buf.getMappedRange(), 0, bits.length).set(bits);
    buf.unmap();
    return buf;
  };
  const bits = (m) => Uint16Array.from(m, f16Bits);
  // Q's buffer is followed by P's values (see left_row_major_st), the rest by zeros.
  const qBuf = upload(bits([...Q, ...P]));
  const kBuf = upload(bits(K));
  const vBuf = upload(bits(V));
  const pBuf = upload(bits(P));
  // An explicit layout: a check's body need not use every binding ("auto" would drop the unused ones).
  const bindLayout = device.createBindGroupLayout({
    entries: [0, 1, 2, 3, 4, 5].map((binding) => ({
      binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: binding < 4 ? "read-only-storage" : "storage" },
    })),
  });
  const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [bindLayout] });
  for (const check of checks) {
    const rec = { name: check.name };
    out.checks.push(rec);
    try {
      const code = kernel(check.body);
      const module = device.createShaderModule({ code });
      const messages = (await module.getCompilationInfo()).messages;
      if (messages.length)
        rec.messages = messages.map((m) => `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`).slice(0, 4);
      device.pushErrorScope("validation");
      const pipeline = await withTimeout(
        device.createComputePipelineAsync({
          layout: pipelineLayout,
          compute: { module, entryPoint: "main" },
        }),
        20000,
        "pipeline",
      );
      const perr = await device.popErrorScope();
      if (perr) throw new Error(`pipeline: ${perr.message}`);
      const oBuf = device.createBuffer({ size: 16 * 64 * 4, usage: S | GPUBufferUsage.COPY_SRC });
      const ohBuf = device.createBuffer({ size: 16 * 64 * 2, usage: S | GPUBufferUsage.COPY_SRC });
      const read = device.createBuffer({
        size: 16 * 64 * 4,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      const bind = device.createBindGroup({
        layout: bindLayout,
        entries: [qBuf, kBuf, vBuf, pBuf, oBuf, ohBuf].map((buffer, binding) => ({
          binding,
          resource: { buffer },
        })),
      });
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(1);
      pass.end();
      const f16Out = check.out === "f16";
      enc.copyBufferToBuffer(f16Out ? ohBuf : oBuf, 0, read, 0, f16Out ? 16 * 64 * 2 : 16 * 64 * 4);
      device.queue.submit([enc.finish()]);
      await withTimeout(read.mapAsync(GPUMapMode.READ), 10000, "read back");
      const raw = read.getMappedRange();
      const got = f16Out
        ? Array.from(new Uint16Array(raw.slice(0)), f16Value)
        : Array.from(new Float32Array(raw.slice(0)));
      read.unmap();
      const n = check.want.length;
      const mismatches = [];
      for (let i = 0; i < n; i++) if (got[i] !== check.want[i]) mismatches.push([i, got[i], check.want[i]]);
      Object.assign(rec, {
        ok: mismatches.length === 0,
        compared: n,
        bad: mismatches.length,
        first: mismatches.slice(0, 6),
      });
      if (mismatches.length) {
        // Where do the got values sit in the wanted matrix? (a transposition or offset shows up here)
        const cols = n === 256 ? 16 : 64;
        rec.gotRow0 = got.slice(0, Math.min(cols, 16));
        rec.wantRow0 = Array.from(check.want.slice(0, Math.min(cols, 16)));
        rec.wantCol0 = Array.from({ length: Math.min(16, n / cols) }, (_, r) => check.want[r * cols]);
      }
      for (const b of [oBuf, ohBuf, read]) b.destroy();
    } catch (e) {
      rec.ok = false;
      rec.error = String(e?.message ?? e);
    }
    save();
  }
}
out.finished = new Date().toISOString();
save();
if (out.skipped) console.log(`layout checks skipped: ${out.skipped}`);
for (const c of out.checks)
  console.log(
    `layout ${c.name}: ${c.ok ? "PASS" : "FAIL"} ${c.error ?? ""}${c.bad ? ` bad ${c.bad}/${c.compared} first ${JSON.stringify(c.first)} gotRow0 ${JSON.stringify(c.gotRow0)} wantRow0 ${JSON.stringify(c.wantRow0)} wantCol0 ${JSON.stringify(c.wantCol0)}` : ""}${c.messages ? ` ${JSON.stringify(c.messages)}` : ""}`,
  );
process.exit(0);
