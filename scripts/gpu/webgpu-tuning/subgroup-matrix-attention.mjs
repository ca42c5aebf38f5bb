// Prototype: how fast is a forward attention built on Dawn's subgroup matrices (tensor cores through
// VK_KHR_cooperative_matrix) on this machine, before it is worth a kernel in @te/webgpu? Standalone, no mask,
// no bias, dense [b*h, s, d] f16 Q/K/V, f32 output, f32 accumulation; b2 h16 s2048 at d64 and d128 (the shapes
// of issue 9's acceptance), checked against a float64 CPU reference on sampled rows and timed.
//
// Two passes over the keys per query block, so that no accumulator in a subgroup matrix ever needs a per-row
// rescale (subgroup matrices offer only whole-matrix scalar ops, and an online-softmax rescale of O would
// mean a round trip through workgroup memory per tile):
//   pass 1: S = Q K^T on the matrices, stored to workgroup memory; lanes keep each row's running max and sum;
//   pass 2: S again, P = exp(S * scale - max) / sum written as f16, O += P V on the matrices, O stored as is.
// That is 3 GEMMs' worth of matrix work instead of 2 (reported TFLOP/s count the usual 4 b h s^2 d).
// The "online" variants do one pass instead, with the round trip: per tile, O's fragments are stored to
// workgroup memory, lanes rescale their rows by exp(m_old - m_new), and the fragments are loaded back.
// The "lazy" variants (one pass too) keep the running max fixed unless a row's tile max exceeds it by more than 8
// (P = exp(s * scale - m) <= e^8 then, fine for f16), so the round trip happens only on the tiles where one does;
// the decision is made workgroup-uniform through a workgroup flag and workgroupUniformLoad, so that the round
// trip may use workgroupBarrier; it goes through sS in chunks of min(bkv, d) columns, so lazy needs no sO.
// "rot" rotates each softmax lane's column order so that the lanes' sS/sP accesses avoid bank conflicts.
// Layout: a workgroup of SGW subgroups owns 16 * SGW query rows (one 16-row fragment per subgroup), K/V tiles of
// BKV keys are staged in workgroup memory as f16. The fragment offsets depend on the subgroup's index
// (local_invocation_index / subgroup size), hence the uniformity diagnostic is turned off.
//
// `node subgroup-matrix-attention.mjs [out.json]` where `webgpu` resolves (the GPU bundle; or TE_WEBGPU_MODULE).
// Needs an adapter with shader-f16 and an f16 x f16 -> f32 16x16x16 subgroup-matrix configuration (on the H200:
// Dawn toggles allow_unsafe_apis + vulkan_enable_f16_on_nvidia, see subgroup-matrix-probe.mjs); records why not.
import { writeFileSync } from "node:fs";
import { f16Bits, f16Value, openMatrixDevice, withTimeout } from "./matrix-device.mjs";

const outPath = process.argv[2];
const out = { started: new Date().toISOString(), runs: [] };
const save = () => outPath && writeFileSync(outPath, JSON.stringify(out, null, 1));
const log = (...a) => console.error("[attn]", ...a);

function kernel({ d, bkv, sgw, sg, online, kt, rot, lazy }) {
  const threads = sg * sgw;
  const dk = d / 16;
  const nj = bkv / 16;
  const L = "subgroup_matrix_left<f16, 16, 16>";
  const R = "subgroup_matrix_right<f16, 16, 16>";
  const Acc = "subgroup_matrix_result<f32, 16, 16>";
  // The K^T fragment (d block k, key block j): a col_major load of K's tile, or with `kt` a row_major load of a
  // tile the copy stored transposed ([d, bkv]), for when col_major loads are what goes wrong.
  const kTile = (j, k) =>
    kt
      ? `subgroupMatrixLoad<${R}, row_major>(&sK, ${k * 16 * bkv + j * 16}u, ${bkv}u)`
      : `subgroupMatrixLoad<${R}, col_major>(&sK, ${j * 16 * d + k * 16}u, ${d}u)`;
  const rep = (n, f) => Array.from({ length: n }, (_, i) => f(i)).join("\n    ");
  // S fragments for the current K tile -> sS (this subgroup's 16 x BKV block, row-major).
  // Accumulators are zeroed explicitly: a bare `var` inside a loop is not re-zeroed per iteration by Dawn on
  // NVIDIA (subgroup-matrix-layout.mjs, check loop_var_zeroed), which was this prototype's first bug.
  const scores = `${rep(nj, (j) => `var s${j} = ${Acc}();`)}
    ${rep(
      nj * dk,
      (x) =>
        `s${Math.floor(x / dk)} = subgroupMatrixMultiplyAccumulate(q${x % dk}, ${kTile(Math.floor(x / dk), x % dk)}, s${Math.floor(x / dk)});`,
    )}
    ${rep(nj, (j) => `subgroupMatrixStore<row_major>(&sS, sub * ${16 * bkv}u + ${j * 16}u, s${j}, ${bkv}u);`)}`;
  // 8 f16 per lane and step from a vec4<u32>; `transposed` stores element (key, x) at x * bkv + key.
  const copy = (dst, src, transposed = false) => `for (var i = li; i < ${(bkv * d) / 8}u; i += ${threads}u) {
      let w = ${src}[(base + kv0 * ${d}u) / 8u + i];
      var h = array<vec2<f16>, 4>(bitcast<vec2<f16>>(w.x), bitcast<vec2<f16>>(w.y), bitcast<vec2<f16>>(w.z), bitcast<vec2<f16>>(w.w));
      for (var t = 0u; t < 8u; t++) {
        let e = i * 8u + t;
        ${dst}[${transposed ? `(e % ${d}u) * ${bkv}u + e / ${d}u` : "e"}] = h[t / 2u][t % 2u];
      }
    }`;
  const half = bkv / 2;
  // `rot`: each softmax lane visits its half row in a rotated order, c0 + (c + off) % half, with `off` chosen so
  // that the 32 lanes' first sS addresses lie in 32 distinct banks (rows are bkv f32 apart, so without it all
  // lanes of a half hit the same bank). `cc` is the column (within the half) visited at step c.
  const offExpr = half === 8 ? "r / 2u" : half === 16 ? "r" : "r + 16u * (lane % 2u)";
  const cc = rot ? `let cc = (c + off) & ${half - 1}u;` : "let cc = c;";
  // `lazy`: one pass, the running max only moves when a row's tile max exceeds it by more than 8, and only then
  // (for the whole workgroup, decided through a workgroup-uniform flag) O makes the round trip through
  // workgroup memory. The round trip and the final store reuse sS, in chunks of cw columns of O.
  const cw = Math.min(bkv, d);
  const hw = cw / 2;
  const occ = cw === bkv ? cc : "let cc = c;";
  const chunks = (f) =>
    Array.from({ length: d / cw }, (_, ch) =>
      f(
        ch,
        Array.from({ length: cw / 16 }, (_, i) => [ch * (cw / 16) + i, i]),
      ),
    ).join("\n    ");
  const lazyPath = `
  var m = -3.0e38;
  var l = 0.0;
  ${rep(dk, (n) => `var o${n} = ${Acc}();`)}
  // This lane's part of its row in sS when O's chunks pass through it (hw columns of a cw-column chunk).
  let oc0 = (lane % 2u) * ${hw}u;
  let orow = sub * ${16 * bkv}u + r * ${bkv}u + oc0;
  for (var kv0 = 0u; kv0 < p.s; kv0 += ${bkv}u) {
    workgroupBarrier();
    if (li == 0u) { atomicStore(&flag, 0u); }
    ${copy("sK", "K", kt)}
    ${copy("sV", "V")}
    workgroupBarrier();
    ${scores}
    workgroupBarrier();
    var mx = -3.0e38;
    for (var c = 0u; c < ${half}u; c++) { ${cc} mx = max(mx, sS[srow + cc]); }
    mx = max(mx, subgroupShuffleXor(mx, 1u)) * p.scale;
    if (subgroupAny(mx > m + 8.0) && lane == 0u) { atomicOr(&flag, 1u); }
    // Workgroup-uniform (the load has a barrier in it), so the round trip below may use workgroupBarrier.
    let upd = workgroupUniformLoad(&flag) != 0u;
    let mn = select(m, max(m, mx), upd);
    let alpha = exp(m - mn);
    var sum = 0.0;
    for (var c = 0u; c < ${half}u; c++) {
      ${cc}
      let e = exp(sS[srow + cc] * p.scale - mn);
      sum += e;
      sP[srow + cc] = f16(e);
    }
    sum += subgroupShuffleXor(sum, 1u);
    l = l * alpha + sum;
    m = mn;
    if (upd && kv0 > 0u) { // on the first tile O is zero
    ${chunks(
      (ch, frags) => `workgroupBarrier(); // sS's reads (scores, or the previous chunk's loads) are done
    ${frags.map(([n, i]) => `subgroupMatrixStore<row_major>(&sS, sub * ${16 * bkv}u + ${i * 16}u, o${n}, ${bkv}u);`).join("\n    ")}
    workgroupBarrier();
    for (var c = 0u; c < ${hw}u; c++) { ${occ} sS[orow + cc] *= alpha; }
    workgroupBarrier();
    ${frags.map(([n, i]) => `o${n} = subgroupMatrixLoad<${Acc}, row_major>(&sS, sub * ${16 * bkv}u + ${i * 16}u, ${bkv}u);`).join("\n    ")}`,
    )}
    }
    workgroupBarrier();
    ${rep(nj, (j) => `let p${j} = subgroupMatrixLoad<${L}, row_major>(&sP, sub * ${16 * bkv}u + ${j * 16}u, ${bkv}u);`)}
    ${rep(
      nj * dk,
      (x) =>
        `o${x % dk} = subgroupMatrixMultiplyAccumulate(p${Math.floor(x / dk)}, subgroupMatrixLoad<${R}, row_major>(&sV, ${Math.floor(x / dk) * 16 * d + (x % dk) * 16}u, ${d}u), o${x % dk});`,
    )}
  }
  let inv = 1.0 / l;
  ${chunks(
    (ch, frags) => `workgroupBarrier();
    ${frags.map(([n, i]) => `subgroupMatrixStore<row_major>(&sS, sub * ${16 * bkv}u + ${i * 16}u, o${n}, ${bkv}u);`).join("\n    ")}
    workgroupBarrier();
    for (var c = 0u; c < ${hw}u; c++) { ${occ} O[base + (row0 + r) * ${d}u + ${ch * cw}u + oc0 + cc] = sS[orow + cc] * inv; }`,
  )}
`;
  return `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
${sgw > 1 ? "diagnostic(off, chromium.subgroup_matrix_uniformity);" : ""}
struct P { s: u32, pad0: u32, scale: f32, pad1: u32 }
@group(0) @binding(0) var<storage, read> Qh: array<f16>;
@group(0) @binding(1) var<storage, read> K: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> V: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
@group(0) @binding(4) var<uniform> p: P;
var<workgroup> sK: array<f16, ${bkv * d}>;
var<workgroup> sV: array<f16, ${bkv * d}>;
var<workgroup> sS: array<f32, ${sgw * 16 * bkv}>;
var<workgroup> sP: array<f16, ${sgw * 16 * bkv}>;
${online && !lazy ? `var<workgroup> sO: array<f32, ${sgw * 16 * d}>;` : ""}
${lazy ? "var<workgroup> flag: atomic<u32>;" : ""}
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
  let sub = ${sgw > 1 ? `li / ${sg}u` : "0u"}; // with one subgroup a constant, which uniformity analysis accepts
  let base = wg.y * p.s * ${d}u;              // this (batch, head)'s rows
  let row0 = wg.x * ${16 * sgw}u + sub * 16u; // this subgroup's first query row
  ${Array.from({ length: dk }, (_, k) => `let q${k} = subgroupMatrixLoad<${L}, row_major>(&Qh, base + row0 * ${d}u + ${k * 16}u, ${d}u);`).join("\n  ")}
  // Softmax lanes: two per row, each over half of the tile's columns.
  let r = lane / 2u;
  let c0 = (lane % 2u) * ${half}u;
  let srow = sub * ${16 * bkv}u + r * ${bkv}u + c0;
  ${rot ? `let off = ${offExpr};` : ""}
${
  lazy
    ? lazyPath
    : online
      ? `
  var m = -3.0e38;
  var l = 0.0;
  ${rep(dk, (n) => `var o${n} = ${Acc}();`)}
  // This subgroup's rows of O in sO, for the per-row rescale: lanes as in the softmax, halves of d.
  let orow = sub * ${16 * d}u + r * ${d}u + (lane % 2u) * ${d / 2}u;
  for (var kv0 = 0u; kv0 < p.s; kv0 += ${bkv}u) {
    workgroupBarrier();
    ${copy("sK", "K", kt)}
    ${copy("sV", "V")}
    workgroupBarrier();
    ${scores}
    ${rep(dk, (n) => `subgroupMatrixStore<row_major>(&sO, sub * ${16 * d}u + ${n * 16}u, o${n}, ${d}u);`)}
    workgroupBarrier();
    var mx = -3.0e38;
    for (var c = 0u; c < ${half}u; c++) { ${cc} mx = max(mx, sS[srow + cc]); }
    mx = max(mx, subgroupShuffleXor(mx, 1u)) * p.scale;
    let mn = max(m, mx);
    let alpha = exp(m - mn);
    var sum = 0.0;
    for (var c = 0u; c < ${half}u; c++) {
      ${cc}
      let e = exp(sS[srow + cc] * p.scale - mn);
      sum += e;
      sP[srow + cc] = f16(e);
    }
    sum += subgroupShuffleXor(sum, 1u);
    l = l * alpha + sum;
    m = mn;
    for (var c = 0u; c < ${d / 2}u; c++) { sO[orow + c] *= alpha; }
    workgroupBarrier();
    ${rep(dk, (n) => `o${n} = subgroupMatrixLoad<${Acc}, row_major>(&sO, sub * ${16 * d}u + ${n * 16}u, ${d}u);`)}
    ${rep(nj, (j) => `let p${j} = subgroupMatrixLoad<${L}, row_major>(&sP, sub * ${16 * bkv}u + ${j * 16}u, ${bkv}u);`)}
    ${rep(
      nj * dk,
      (x) =>
        `o${x % dk} = subgroupMatrixMultiplyAccumulate(p${Math.floor(x / dk)}, subgroupMatrixLoad<${R}, row_major>(&sV, ${Math.floor(x / dk) * 16 * d + (x % dk) * 16}u, ${d}u), o${x % dk});`,
    )}
  }
  workgroupBarrier();
  ${rep(dk, (n) => `subgroupMatrixStore<row_major>(&sO, sub * ${16 * d}u + ${n * 16}u, o${n}, ${d}u);`)}
  workgroupBarrier();
  let inv = 1.0 / l;
  for (var c = 0u; c < ${d / 2}u; c++) { O[base + (row0 + r) * ${d}u + (lane % 2u) * ${d / 2}u + c] = sO[orow + c] * inv; }
`
      : `
  var m = -3.0e38;
  var l = 0.0;
  for (var kv0 = 0u; kv0 < p.s; kv0 += ${bkv}u) {
    workgroupBarrier();
    ${copy("sK", "K", kt)}
    workgroupBarrier();
    ${scores}
    workgroupBarrier();
    var mx = -3.0e38;
    for (var c = 0u; c < ${half}u; c++) { ${cc} mx = max(mx, sS[srow + cc]); }
    mx = max(mx, subgroupShuffleXor(mx, 1u)) * p.scale;
    let mn = max(m, mx);
    var sum = 0.0;
    for (var c = 0u; c < ${half}u; c++) { ${cc} sum += exp(sS[srow + cc] * p.scale - mn); }
    sum += subgroupShuffleXor(sum, 1u);
    l = l * exp(m - mn) + sum;
    m = mn;
  }
  let inv = 1.0 / l;
  ${rep(dk, (n) => `var o${n} = ${Acc}();`)}
  for (var kv0 = 0u; kv0 < p.s; kv0 += ${bkv}u) {
    workgroupBarrier();
    ${copy("sK", "K", kt)}
    ${copy("sV", "V")}
    workgroupBarrier();
    ${scores}
    workgroupBarrier();
    for (var c = 0u; c < ${half}u; c++) { ${cc} sP[srow + cc] = f16(exp(sS[srow + cc] * p.scale - m) * inv); }
    workgroupBarrier();
    ${rep(nj, (j) => `let p${j} = subgroupMatrixLoad<${L}, row_major>(&sP, sub * ${16 * bkv}u + ${j * 16}u, ${bkv}u);`)}
    ${rep(
      nj * dk,
      (x) =>
        `o${x % dk} = subgroupMatrixMultiplyAccumulate(p${Math.floor(x / dk)}, subgroupMatrixLoad<${R}, row_major>(&sV, ${Math.floor(x / dk) * 16 * d + (x % dk) * 16}u, ${d}u), o${x % dk});`,
    )}
  }
  ${Array.from({ length: dk }, (_, n) => `subgroupMatrixStore<row_major>(&O, base + row0 * ${d}u + ${n * 16}u, o${n}, ${d}u);`).join("\n  ")}
`
}
}`;
}

// The older, deprecated spelling of the loads/stores (layout as a bool argument), tried when this Dawn rejects
// the current one (subgroup-matrix-probe.mjs tries both too).
const boolSyntax = (code) =>
  code
    .replace(
      /subgroupMatrixLoad<(subgroup_matrix_\w+<[^>]*>), (row|col)_major>\(([^,]+), ([^,]+), ([^,()]+)\)/g,
      (_, t, major, ptr, off, stride) =>
        `subgroupMatrixLoad<${t}>(${ptr}, ${off}, ${major === "col"}, ${stride})`,
    )
    .replace(
      /subgroupMatrixStore<row_major>\(([^,]+), ([^,]+), ([^,]+), ([^,()]+)\)/g,
      (_, ptr, off, value, stride) => `subgroupMatrixStore(${ptr}, ${off}, ${value}, false, ${stride})`,
    );

if (process.env.TE_ATTN_DUMP) {
  if (process.env.TE_ATTN_DUMP === "bool") {
    console.log(boolSyntax(kernel({ d: 64, bkv: 64, sgw: 4, sg: 32 })));
    process.exit(0);
  }
  if (process.env.TE_ATTN_DUMP === "online") {
    console.log(kernel({ d: 64, bkv: 32, sgw: 4, sg: 32, online: true }));
    process.exit(0);
  }
  // TE_ATTN_DUMP=d,bkv,sgw[,flag...] with flags among online, kt, rot, lazy (e.g. 64,32,8,rot,lazy).
  const [d, bkv, sgw, ...flags] = process.env.TE_ATTN_DUMP.split(",");
  const flagged = Object.fromEntries(flags.map((f) => [f, true]));
  console.log(
    kernel(+d > 1 ? { d: +d, bkv: +bkv, sgw: +sgw, sg: 32, ...flagged } : { d: 64, bkv: 64, sgw: 4, sg: 32 }),
  );
  process.exit(0);
}

// TE_ATTN_SELFTEST=1 (any adapter, e.g. SwiftShader with TE_ATTN_SEQ=128): every variant runs a plain f32
// one-row-per-lane attention with the same bindings and grid instead, which checks this file's host side
// (data, buffers, grid, reference, timing) where no subgroup matrices exist.
const selfTest = process.env.TE_ATTN_SELFTEST === "1";
function naiveKernel(d, sgw) {
  return `struct P { s: u32, pad0: u32, scale: f32, pad1: u32 }
@group(0) @binding(0) var<storage, read> Qh: array<u32>;
@group(0) @binding(1) var<storage, read> K: array<u32>;
@group(0) @binding(2) var<storage, read> V: array<u32>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
@group(0) @binding(4) var<uniform> p: P;
fn h(a: u32, e: u32) -> f32 {
  let w = select(Qh[e / 2u], select(K[e / 2u], V[e / 2u], a == 2u), a != 0u);
  let v = unpack2x16float(w);
  return select(v.x, v.y, (e & 1u) == 1u);
}
@compute @workgroup_size(${16 * sgw})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let base = wg.y * p.s * ${d}u;
  let row = wg.x * ${16 * sgw}u + li;
  var m = -3.0e38;
  for (var j = 0u; j < p.s; j++) {
    var acc = 0.0;
    for (var x = 0u; x < ${d}u; x++) { acc += h(0u, base + row * ${d}u + x) * h(1u, base + j * ${d}u + x); }
    m = max(m, acc * p.scale);
  }
  var l = 0.0;
  var o: array<f32, ${d}>;
  for (var j = 0u; j < p.s; j++) {
    var acc = 0.0;
    for (var x = 0u; x < ${d}u; x++) { acc += h(0u, base + row * ${d}u + x) * h(1u, base + j * ${d}u + x); }
    let e = exp(acc * p.scale - m);
    l += e;
    for (var x = 0u; x < ${d}u; x++) { o[x] += e * h(2u, base + j * ${d}u + x); }
  }
  for (var x = 0u; x < ${d}u; x++) { O[base + row * ${d}u + x] = o[x] / l; }
}`;
}

const opened = await openMatrixDevice(out, { selfTest });
const device = opened.device;
out.adapter = opened.info;
const sg = selfTest ? 32 : opened.info?.subgroupMaxSize || 32;
// The softmax lanes are laid out two per row of a 16-row fragment: 32-lane subgroups only.
if (device && sg !== 32) out.skipped = `subgroup size ${sg}, the prototype needs 32`;

// Random f16 data from a table of 4096 values uniform in [-1, 1], so that generating 25M elements is cheap.
const table = Uint16Array.from({ length: 4096 }, (_, i) => f16Bits((i + 0.5) / 2048 - 1));
const tableValue = Float64Array.from(table, f16Value);
let seed = 2026;
function tensor(n) {
  const idx = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    idx[i] = seed >>> 20;
  }
  return { bits: Uint16Array.from(idx, (i) => table[i]), idx };
}

function buffer(data, usage) {
  const buf = device.createBuffer({
    size: Math.ceil(data.byteLength / 16) * 16,
    usage,
    mappedAtCreation: true,
  });
  new Uint8Array(buf.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  buf.unmap();
  return buf;
}

// Workgroup memory of a variant's kernel: sK, sV (f16), sS (f32), sP (f16), sO (f32, online) or the flag (lazy).
const wgBytes = ({ d, bkv, sgw, online, lazy }) =>
  2 * bkv * d * 2 + sgw * 16 * bkv * 6 + (online && !lazy ? sgw * 16 * d * 4 : 0) + (lazy ? 16 : 0); // Dawn counts the u32 flag as 16
const maxWgBytes = 49152;

let syntaxes = ["template", "bool"];
const inputs = {};
async function run(shape, variant) {
  const { bh, s, d } = shape;
  const rec = { ...shape, ...variant };
  out.runs.push(rec);
  const t0 = performance.now();
  rec.wgBytes = wgBytes({ d, ...variant });
  if (rec.wgBytes > maxWgBytes) {
    rec.ok = false;
    rec.error = `skipped: ${rec.wgBytes} bytes of workgroup memory > ${maxWgBytes}`;
    log(JSON.stringify(rec));
    return;
  }
  try {
    let pipeline;
    for (const syntax of syntaxes) {
      const code = selfTest
        ? naiveKernel(d, variant.sgw)
        : syntax === "bool"
          ? boolSyntax(kernel({ d, ...variant, sg }))
          : kernel({ d, ...variant, sg });
      const module = device.createShaderModule({ code });
      const info = await module.getCompilationInfo();
      rec.messages = info.messages.map((m) => `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`).slice(0, 6);
      device.pushErrorScope("validation");
      pipeline = await withTimeout(
        device.createComputePipelineAsync({ layout: "auto", compute: { module, entryPoint: "main" } }),
        20000,
        "pipeline",
      ).catch((e) => {
        rec.pipelineError = String(e?.message ?? e);
      });
      const scoped = await device.popErrorScope();
      if (scoped) rec.pipelineError = `${rec.pipelineError ?? ""} ${scoped.message}`.trim();
      if (pipeline) {
        rec.syntax = syntax;
        syntaxes = [syntax]; // the later variants use what compiled
        break;
      }
    }
    if (!pipeline) throw new Error(`pipeline: ${rec.pipelineError}`);
    const n = bh * s * d;
    // The same inputs for every variant of a shape (generating them is most of a run's host time).
    const key = `${bh} ${s} ${d}`;
    if (inputs.key !== key) Object.assign(inputs, { key, qkv: [tensor(n), tensor(n), tensor(n)] });
    const [q, k, v] = inputs.qkv;
    const S = GPUBufferUsage.STORAGE;
    const bufs = [q, k, v].map((t) => buffer(t.bits, S));
    const o = device.createBuffer({ size: n * 4, usage: S | GPUBufferUsage.COPY_SRC });
    const scale = 1 / Math.sqrt(d);
    const params = new ArrayBuffer(16);
    new Uint32Array(params, 0, 1)[0] = s;
    new Float32Array(params, 8, 1)[0] = scale;
    const u = buffer(new Uint8Array(params), GPUBufferUsage.UNIFORM);
    const bind = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [...bufs, o, u].map((b, binding) => ({ binding, resource: { buffer: b } })),
    });
    const dispatch = (count) => {
      const enc = device.createCommandEncoder();
      for (let i = 0; i < count; i++) {
        const pass = enc.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bind);
        pass.dispatchWorkgroups(s / (16 * variant.sgw), bh);
        pass.end();
      }
      device.queue.submit([enc.finish()]);
      return device.queue.onSubmittedWorkDone();
    };
    device.pushErrorScope("validation");
    await withTimeout(dispatch(1), 10000, "first dispatch");
    const err = await device.popErrorScope();
    if (err) throw new Error(`dispatch: ${err.message}`);
    const read = device.createBuffer({
      size: n * 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(o, 0, read, 0, n * 4);
    device.queue.submit([enc.finish()]);
    await withTimeout(read.mapAsync(GPUMapMode.READ), 10000, "read back");
    const got = new Float32Array(read.getMappedRange().slice(0));
    read.destroy();
    // float64 reference on 48 sampled rows (and the last one)
    let maxErr = 0;
    let bad = 0;
    const rows = [...Array.from({ length: 48 }, (_, i) => (i * 7919 * 13) % (bh * s)), bh * s - 1];
    const sc = new Float64Array(s);
    for (const row of rows) {
      const head = Math.floor(row / s);
      const kb = head * s * d;
      let mx = -Infinity;
      for (let j = 0; j < s; j++) {
        let acc = 0;
        for (let x = 0; x < d; x++) acc += tableValue[q.idx[row * d + x]] * tableValue[k.idx[kb + j * d + x]];
        sc[j] = acc * scale;
        if (sc[j] > mx) mx = sc[j];
      }
      let sum = 0;
      for (let j = 0; j < s; j++) {
        sc[j] = Math.exp(sc[j] - mx);
        sum += sc[j];
      }
      for (let x = 0; x < d; x++) {
        let acc = 0;
        for (let j = 0; j < s; j++) acc += sc[j] * tableValue[v.idx[kb + j * d + x]];
        const e = Math.abs(got[row * d + x] - acc / sum);
        if (!(e <= 2e-3)) bad++;
        if (!(e <= maxErr)) maxErr = e;
      }
    }
    Object.assign(rec, { rowsChecked: rows.length, bad, maxErr, ok: bad === 0 });
    await dispatch(1);
    const times = [];
    for (let t = 0; t < 3; t++) {
      const t1 = performance.now();
      await withTimeout(dispatch(5), 10000, "timing");
      times.push((performance.now() - t1) / 5);
    }
    rec.ms = +Math.min(...times).toFixed(3);
    rec.tflops = +((4 * bh * s * s * d) / (rec.ms * 1e-3) / 1e12).toPrecision(3);
    for (const b of [...bufs, o, u]) b.destroy();
  } catch (e) {
    rec.ok = false;
    rec.error = String(e?.message ?? e);
  }
  rec.sec = +((performance.now() - t0) / 1000).toFixed(2);
  log(JSON.stringify(rec));
  save();
}

if (device && !out.skipped) {
  const bh = 32; // b2 h16
  const s = Number(process.env.TE_ATTN_SEQ || 2048);
  for (const [d, variants] of [
    [
      64,
      [
        { bkv: 32, sgw: 8 },
        { bkv: 32, sgw: 8, rot: true },
        { bkv: 32, sgw: 8, rot: true, lazy: true },
        { bkv: 64, sgw: 4, rot: true, lazy: true },
        { bkv: 32, sgw: 4, rot: true, lazy: true },
        { bkv: 16, sgw: 16 },
        { bkv: 16, sgw: 16, rot: true },
        { bkv: 16, sgw: 16, rot: true, lazy: true },
        { bkv: 16, sgw: 8, rot: true },
      ],
    ],
    [
      128,
      [
        { bkv: 32, sgw: 4, kt: true },
        { bkv: 32, sgw: 4, kt: true, rot: true },
        { bkv: 32, sgw: 4, kt: true, rot: true, lazy: true },
        { bkv: 16, sgw: 8, kt: true, rot: true, lazy: true },
        { bkv: 16, sgw: 8, kt: true },
        { bkv: 16, sgw: 8, kt: true, rot: true },
        { bkv: 16, sgw: 16, kt: true, rot: true },
      ],
    ],
  ])
    for (const variant of variants) await run({ bh, s, d }, variant);
}
out.finished = new Date().toISOString();
save();
if (out.skipped) console.log(`attention skipped: ${out.skipped}`);
for (const r of out.runs)
  console.log(
    `matrix attention fwd bh${r.bh} s${r.s} d${r.d} bkv${r.bkv} sgw${r.sgw}${r.lazy ? " lazy" : r.online ? " online" : " two-pass"}${r.kt ? " kt" : ""}${r.rot ? " rot" : ""}: ${r.ok ? "PASS" : "FAIL"} ${r.ms ?? "-"} ms ${r.tflops ?? "-"} TFLOP/s (4bhs^2d) maxErr ${r.maxErr ?? "-"} bad ${r.bad ?? "-"} ${r.error ?? ""} ${r.messages?.length ? JSON.stringify(r.messages).slice(0, 300) : ""}`,
  );
if (out.deviceLost) console.log(`device lost: ${out.deviceLost}`);
// No device.destroy(): it waits for queued work, which a timed-out step may have left running.
process.exit(0);
