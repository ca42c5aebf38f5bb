// On the GPU machine (node, CUDA addon, TE_NATIVE_ADDON set): where the host time of one cuda.*
// forward+backward goes. For each config and backend it runs te bench's loop (fresh outputs, forward,
// backward, synchronize, dispose) and times each phase with performance.now(), counts V8 GCs (and their
// ms) inside the timed iterations, and then times the same calls queued back to back with one
// synchronize at the end (the device-bound time per iteration: what the kernels cost when the host
// keeps ahead of the GPU). Prints one JSON line per cell and a table last.
//   node scripts/gpu/host_path_profile.mjs BUNDLE_DIR [configs=test_0,test_1] [backends=cuda.cudnn,cuda.flash]
//     [iters=30] [warmup=5] [yield=1]   (yield=0: no turn of the event loop between iterations, as te bench)
import path from "node:path";
import { PerformanceObserver } from "node:perf_hooks";

const dir = path.resolve(process.argv[2] ?? ".gpu");
const configNames = (process.argv[3] ?? "test_0,test_1").split(",");
const backendIds = (process.argv[4] ?? "cuda.cudnn,cuda.flash").split(",");
const iters = Number(process.argv[5] ?? 30);
const warmup = Number(process.argv[6] ?? 5);
const yieldBetween = (process.argv[7] ?? "1") !== "0";
const core = await import(path.join(dir, "node_modules/@te/core/dist/index.js"));
const native = await import(path.join(dir, "node_modules/@te/native/dist/index.js"));
const { makeParams, getBackend, selectBackend } = core;
const { cudaTensors, uploadTensor } = native;

const CONFIGS = {
  test_0: { b: 2, h: 16, hg: 16, d: 64, sq: 512, causal: false },
  test_1: { b: 2, h: 16, hg: 16, d: 128, sq: 2048, causal: true },
  long_4k_causal: { b: 8, h: 16, hg: 16, d: 128, sq: 4096, causal: true },
};

let gcCount = 0;
let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcCount++;
    gcMs += e.duration;
  }
}).observe({ entryTypes: ["gc"] });

/** A bf16 host tensor of random values in +-[0.125, 2) (random sign, exponent and mantissa bits). */
function randomBf16(shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  const u = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const r = (Math.random() * 1024) | 0;
    u[i] = ((r & 1) << 15) | (0x3e00 + (r >> 1));
  }
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  return { dtype: "bf16", shape, strides, offset: 0, data: u };
}

/** q, k, v, dO of a config, made once per process (the backends of a config share them). */
const inputsOf = new Map();
function hostInputs(configName) {
  if (!inputsOf.has(configName)) {
    const c = CONFIGS[configName];
    const shapes = [c.h, c.hg, c.hg, c.h].map((heads) => [c.b, c.sq, heads, c.d]);
    inputsOf.set(configName, shapes.map(randomBf16));
  }
  return inputsOf.get(configName);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const tick = () => (yieldBetween ? new Promise((r) => setImmediate(r)) : undefined);

async function cell(configName, id) {
  const c = CONFIGS[configName];
  const backend = getBackend(id);
  if (!backend) return { config: configName, backend: id, error: "not registered" };
  const p = makeParams({
    b: c.b,
    h: c.h,
    hg: c.hg,
    d: c.d,
    sq: c.sq,
    dtype: "bf16",
    device: "cuda",
    maskType: c.causal ? "causal" : "no_mask",
    isTraining: true,
  });
  const t0s = performance.now();
  const sel = selectBackend(p, { backends: [id] });
  const selectFirstMs = performance.now() - t0s;
  const t1s = performance.now();
  for (let i = 0; i < 100; i++) selectBackend(p, { backends: [id] });
  const selectCachedUs = ((performance.now() - t1s) / 100) * 1000;
  if (sel.backend.id !== id) return { config: configName, backend: id, error: `selected ${sel.backend.id}` };
  const host = hostInputs(configName);
  const [q, k, v, dO] = host.map((t) => uploadTensor(t));
  const inputs = { q, k, v };
  const phases = { fwd: [], bwd: [], sync: [], dispose: [], total: [] };
  let gcIn = 0;
  let gcMsIn = 0;
  for (let it = 0; it < warmup + iters; it++) {
    await tick(); // lets the GC observer's callbacks of the previous iteration run outside the timing
    const g0 = gcCount;
    const gm0 = gcMs;
    const t0 = performance.now();
    const fwd = await backend.forward(inputs, p);
    const t1 = performance.now();
    const grads = await backend.backward(fwd.saved, dO, p);
    const t2 = performance.now();
    await cudaTensors.synchronize();
    const t3 = performance.now();
    for (const t of [grads.dq, grads.dk, grads.dv]) cudaTensors.dispose(t);
    fwd.saved.release();
    cudaTensors.dispose(fwd.o);
    cudaTensors.dispose(fwd.lse);
    const t4 = performance.now();
    await tick();
    if (it >= warmup) {
      phases.fwd.push(t1 - t0);
      phases.bwd.push(t2 - t1);
      phases.sync.push(t3 - t2);
      phases.dispose.push(t4 - t3);
      phases.total.push(t3 - t0);
      gcIn += gcCount - g0;
      gcMsIn += gcMs - gm0;
    }
  }
  // Device-bound: the same calls queued without waiting for the device in between.
  await cudaTensors.synchronize();
  const n = iters;
  const q0 = performance.now();
  for (let it = 0; it < n; it++) {
    const fwd = await backend.forward(inputs, p);
    const grads = await backend.backward(fwd.saved, dO, p);
    for (const t of [grads.dq, grads.dk, grads.dv, fwd.o, fwd.lse]) cudaTensors.dispose(t);
    fwd.saved.release();
  }
  const hostQueuedMs = (performance.now() - q0) / n;
  await cudaTensors.synchronize();
  const queuedMs = (performance.now() - q0) / n;
  for (const t of [q, k, v, dO]) cudaTensors.dispose(t);
  const r = (x) => Number(x.toFixed(4));
  return {
    config: configName,
    backend: id,
    totalMs: r(median(phases.total)),
    fwdMs: r(median(phases.fwd)),
    bwdMs: r(median(phases.bwd)),
    syncMs: r(median(phases.sync)),
    disposeMs: r(median(phases.dispose)),
    minTotalMs: r(Math.min(...phases.total)),
    gcPerIter: r(gcIn / iters),
    gcMsPerIter: r(gcMsIn / iters),
    queuedMs: r(queuedMs),
    hostQueuedMs: r(hostQueuedMs),
    selectFirstMs: r(selectFirstMs),
    selectCachedUs: r(selectCachedUs),
  };
}

const rows = [];
for (const cfg of configNames)
  for (const id of backendIds) {
    try {
      const row = await cell(cfg, id);
      rows.push(row);
      console.log(JSON.stringify(row));
    } catch (e) {
      console.log(JSON.stringify({ config: cfg, backend: id, error: String(e?.stack ?? e).slice(0, 400) }));
    }
  }
const cols = [
  "config",
  "backend",
  "totalMs",
  "fwdMs",
  "bwdMs",
  "syncMs",
  "disposeMs",
  "gcPerIter",
  "gcMsPerIter",
  "queuedMs",
  "hostQueuedMs",
  "selectCachedUs",
];
console.log(`| ${cols.join(" | ")} |`);
console.log(`|${cols.map(() => "---").join("|")}|`);
for (const r of rows.filter((x) => !x.error)) console.log(`| ${cols.map((c) => r[c]).join(" | ")} |`);
