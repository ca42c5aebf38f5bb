#!/usr/bin/env node
// Attention on ONNX Runtime (onnxruntime-node, CPU execution provider), three ways:
//   ort.native  TE's unfused attention as a framework-native ONNX graph (MatMul/Where/Exp/ReduceSum)
//   ort.fused   ORT's own fused attention op (ONNX Attention, opset 23)
//   ort.te      TE's CPU kernel (native.cpu from @te/native) on ORT tensors, when @te/native is built
// The backends return o and lse; ORT's fused ops have no lse, so ort.fused computes it beside the op.
// "op only" rows time exported inference models without lse (exportAttentionModel({ lse: false })):
// the fused op alone against the native graph alone.
// over sequence lengths 512..4096, forward (and forward+backward where a backend trains), printing times and ratios and
// recording them under benchmarks/results/ with the machine, versions and commit.
//
// Usage: pnpm --filter @te/onnxruntime build && node benchmarks/onnxruntime/bench-attention.mjs
//        [--seqs 512,1024,2048,4096] [--b 1] [--h 8] [--d 64] [--mask causal|no_mask] [--budget-ms 4000]
import { execSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const adapterDir = path.join(root, "packages/onnxruntime");
const requireFromAdapter = createRequire(path.join(adapterDir, "package.json"));
const load = (specifier) => import(pathToFileURL(requireFromAdapter.resolve(specifier)).href);

const { values: args } = parseArgs({
  options: {
    seqs: { type: "string", default: "512,1024,2048,4096" },
    b: { type: "string", default: "1" },
    h: { type: "string", default: "8" },
    d: { type: "string", default: "64" },
    mask: { type: "string", default: "causal" },
    "budget-ms": { type: "string", default: "4000" },
  },
});
const seqs = args.seqs.split(",").map(Number);
const b = Number(args.b);
const h = Number(args.h);
const d = Number(args.d);
const mask = args.mask;
const budgetMs = Number(args["budget-ms"]);

const ort = await load("onnxruntime-node");
const core = await load("@te/core");
const adapter = await import(pathToFileURL(path.join(adapterDir, "dist/index.js")).href);
adapter.configureOrtRuntime({ ort, executionProviders: ["cpu"] });
const nativePackage = path.join(root, "packages/native/dist/index.js");
let nativeNote = "packages/native is not built";
if (existsSync(nativePackage)) {
  try {
    await import(pathToFileURL(nativePackage).href);
    nativeNote = "loaded";
  } catch (e) {
    nativeNote = `@te/native failed to load: ${e.message}`;
  }
}

const random = (shape) =>
  new ort.Tensor(
    "float32",
    Float32Array.from({ length: shape.reduce((a, x) => a * x, 1) }, () => Math.random() * 2 - 1),
    shape,
  );

/**
 * Median of the timed runs of `fn` after two warm-up runs: the first builds the ORT session, and
 * ORT's CPU arena keeps growing (page faults on fresh memory) until the second has finished.
 */
async function time(fn) {
  await fn();
  await fn();
  const runs = [];
  const started = performance.now();
  while (runs.length < 3 || (performance.now() - started < budgetMs && runs.length < 20)) {
    const t0 = performance.now();
    await fn();
    runs.push(performance.now() - t0);
    if (performance.now() - started > budgetMs * 3) break;
  }
  runs.sort((x, y) => x - y);
  return { ms: runs[Math.floor(runs.length / 2)], runs: runs.length };
}

const loadBefore = +os.loadavg()[0].toFixed(2);
const context = { cudaArch: null, env: {} };
const rows = [];
for (const s of seqs) {
  const p = core.makeParams({ b, h, d, sq: s, device: "ort", maskType: mask });
  const inputs = { q: random([b, s, h, d]), k: random([b, s, h, d]), v: random([b, s, h, d]) };
  const row = { seq: s };
  for (const backend of [adapter.ortNative, adapter.ortFused, adapter.ortTe]) {
    // Drops the sessions (and their arenas) of the previous backend: at long sequences several
    // gigabytes of arena would otherwise compete for memory.
    adapter.configureOrtRuntime({ ort, executionProviders: ["cpu"] });
    const verdict = backend.explain(p, context);
    if (!verdict.ok) {
      row[backend.id] = { skipped: verdict.reasons.map((r) => `${r.message} [${r.rule}]`).join("; ") };
      continue;
    }
    row[backend.id] = await time(() => backend.forward(inputs, p));
  }
  for (const graph of ["native", "fused"]) {
    const model = await adapter.exportAttentionModel({ graph, b, h, d, sq: s, mask, lse: false });
    const session = await ort.InferenceSession.create(model.bytes, { executionProviders: ["cpu"] });
    row[`${graph} graph, o only`] = await time(() => session.run(inputs));
    await session.release();
  }
  const training = { ...p, isTraining: true };
  const dO = random([b, s, h, d]);
  for (const backend of [adapter.ortNative, adapter.ortTe]) {
    adapter.configureOrtRuntime({ ort, executionProviders: ["cpu"] });
    if (!backend.explain(training, context).ok) continue;
    // A training step, forward then backward (a backward may consume what its forward saved).
    row[`${backend.id} forward+backward`] = await time(async () => {
      const fwd = await backend.forward(inputs, training);
      await backend.backward(fwd.saved, dO, training);
    });
  }
  rows.push(row);
  const show = (x) => (x?.ms === undefined ? "n/a" : `${x.ms.toFixed(1)} ms`);
  const ratio = (x, y) => (x?.ms && y?.ms ? `${(x.ms / y.ms).toFixed(2)}x` : "n/a");
  const oOnly = [row["native graph, o only"], row["fused graph, o only"]];
  console.log(
    `seq ${s}: ort.native ${show(row["ort.native"])}  ort.fused ${show(row["ort.fused"])}  ort.te ${show(row["ort.te"])}  ` +
      `(native/fused ${ratio(row["ort.native"], row["ort.fused"])}, native/te ${ratio(row["ort.native"], row["ort.te"])})  ` +
      `| o only: native ${show(oOnly[0])}  fused op ${show(oOnly[1])} (native/fused ${ratio(...oOnly)})  ` +
      `| forward+backward: ort.native ${show(row["ort.native forward+backward"])}  ort.te ${show(row["ort.te forward+backward"])}`,
  );
}

const git = (cmd) => {
  try {
    return execSync(cmd, { cwd: root, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
};
const record = {
  benchmark: "onnxruntime attention: framework-native graph vs ORT fused op vs TE CPU kernel on ORT tensors",
  date: new Date().toISOString(),
  commit: git("git rev-parse HEAD"),
  dirty: git("git status --porcelain -- packages/onnxruntime benchmarks/onnxruntime") !== "",
  machine: {
    cpu: os.cpus()[0]?.model,
    cores: os.cpus().length,
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    platform: `${os.platform()} ${os.release()}`,
    // Other work on the machine skews CPU timings: the 1-minute load average before and after.
    loadAverage: [loadBefore, +os.loadavg()[0].toFixed(2)],
  },
  versions: {
    node: process.version,
    "onnxruntime-node": ort.env.versions.node,
    "onnxruntime-common": ort.env.versions.common,
  },
  config: {
    b,
    h,
    hg: h,
    d,
    mask,
    dtype: "fp32",
    executionProvider: "cpu",
    timing: "median of runs after two warm-up runs (session build and arena growth excluded)",
    nativeCpu: nativeNote,
  },
  rows,
};
const resultsDir = path.join(root, "benchmarks/results");
mkdirSync(resultsDir, { recursive: true });
const file = path.join(resultsDir, `onnxruntime-cpu-${mask}.json`);
writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
console.log(`recorded ${path.relative(root, file)}`);
