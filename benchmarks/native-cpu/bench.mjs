#!/usr/bin/env node
// native.cpu (TE's CPU flash-style kernel, @te/native) against the float64 reference and ONNX Runtime's
// CPU attention (ort.fused: the ONNX Attention op; ort.native: TE's unfused graph, the ORT path with a
// backward), fp32, seq 512..4096, forward and forward+backward, all cores for both (ORT's default
// intra-op pool, native.cpu's default of one thread per core). Peak memory of a native.cpu
// forward+backward is measured per sequence length in a fresh child process (RSS sampled during the call).
// Records benchmarks/results/native-cpu-<mask>.json with machine, versions and commit.
//
// Usage: pnpm --filter @te/native --filter @te/onnxruntime build && node benchmarks/native-cpu/bench.mjs
//        [--seqs 512,1024,2048,4096] [--b 1] [--h 8] [--d 64] [--mask causal|no_mask] [--budget-ms 3000]
//        [--reference-max-seq 1024]
import { execFileSync, execSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const ortDir = path.join(root, "packages/onnxruntime");
const requireFromOrt = createRequire(path.join(ortDir, "package.json"));
const load = (specifier) => import(pathToFileURL(requireFromOrt.resolve(specifier)).href);

const { values: args } = parseArgs({
  options: {
    seqs: { type: "string", default: "512,1024,2048,4096" },
    b: { type: "string", default: "1" },
    h: { type: "string", default: "8" },
    d: { type: "string", default: "64" },
    mask: { type: "string", default: "causal" },
    "budget-ms": { type: "string", default: "3000" },
    "reference-max-seq": { type: "string", default: "1024" },
    "memory-child": { type: "string" },
  },
});
const [b, h, d] = [Number(args.b), Number(args.h), Number(args.d)];
const mask = args.mask;
const core = await load("@te/core");
const native = await import(pathToFileURL(path.join(root, "packages/native/dist/index.js")).href);
const nativeCpu = native.nativeCpuBackend();

const randomHost = (shape) => {
  const t = core.hostTensor("fp32", shape);
  for (let i = 0; i < t.data.length; i++) t.data[i] = Math.random() * 2 - 1;
  return t;
};

if (args["memory-child"] !== undefined) {
  // One native.cpu forward+backward at this length; prints the max RSS growth over the baseline.
  const s = Number(args["memory-child"]);
  const p = core.makeParams({ b, h, d, sq: s, maskType: mask, isTraining: true });
  const inputs = { q: randomHost([b, s, h, d]), k: randomHost([b, s, h, d]), v: randomHost([b, s, h, d]) };
  const dO = randomHost([b, s, h, d]);
  // The kernel runs on libuv's pool (AsyncWorker), so the event loop is free to sample RSS meanwhile.
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 2);
  const fwd = await nativeCpu.forward(inputs, p);
  await nativeCpu.backward(fwd.saved, dO, p);
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage.rss());
  console.log(JSON.stringify({ seq: s, peakRssGrowthMiB: (peak - baseline) / 2 ** 20 }));
  process.exit(0);
}

const ort = await load("onnxruntime-node");
const adapter = await import(pathToFileURL(path.join(ortDir, "dist/index.js")).href);
const budgetMs = Number(args["budget-ms"]);

async function time(fn) {
  await fn();
  const runs = [];
  const started = performance.now();
  while (runs.length < 3 || (performance.now() - started < budgetMs && runs.length < 15)) {
    const t0 = performance.now();
    await fn();
    runs.push(performance.now() - t0);
  }
  runs.sort((x, y) => x - y);
  return { ms: runs[Math.floor(runs.length / 2)], runs: runs.length };
}

const loadBefore = +os.loadavg()[0].toFixed(2);
const rows = [];
for (const s of args.seqs.split(",").map(Number)) {
  const p = core.makeParams({ b, h, d, sq: s, maskType: mask, isTraining: true });
  const host = { q: randomHost([b, s, h, d]), k: randomHost([b, s, h, d]), v: randomHost([b, s, h, d]) };
  const dO = randomHost([b, s, h, d]);
  const row = { seq: s };
  row["native.cpu fwd"] = await time(() => nativeCpu.forward(host, p));
  row["native.cpu fwd+bwd"] = await time(async () => {
    const f = await nativeCpu.forward(host, p);
    await nativeCpu.backward(f.saved, dO, p);
  });
  if (s <= Number(args["reference-max-seq"])) {
    row["reference fwd"] = await time(() => core.referenceBackend.forward(host, p));
  } else {
    row["reference fwd"] = {
      skipped: `float64 JS reference not timed above seq ${args["reference-max-seq"]}`,
    };
  }
  adapter.configureOrtRuntime({ ort, executionProviders: ["cpu"] });
  const ortParams = { ...p, device: "ort" };
  const toOrt = (t) => new ort.Tensor("float32", t.data, t.shape);
  const ortInputs = { q: toOrt(host.q), k: toOrt(host.k), v: toOrt(host.v) };
  const fusedVerdict = adapter.ortFused.explain(
    { ...ortParams, isTraining: false },
    { cudaArch: null, env: {} },
  );
  row["ort.fused fwd"] = fusedVerdict.ok
    ? await time(() => adapter.ortFused.forward(ortInputs, { ...ortParams, isTraining: false }))
    : { skipped: fusedVerdict.reasons.map((r) => r.message).join("; ") };
  adapter.configureOrtRuntime({ ort, executionProviders: ["cpu"] });
  const ortDO = toOrt(dO);
  row["ort.native fwd+bwd"] = await time(async () => {
    const f = await adapter.ortNative.forward(ortInputs, ortParams);
    await adapter.ortNative.backward(f.saved, ortDO, ortParams);
  });
  adapter.configureOrtRuntime({ ort, executionProviders: ["cpu"] });
  const mem = execFileSync(
    process.execPath,
    [
      fileURLToPath(import.meta.url),
      "--memory-child",
      String(s),
      "--b",
      args.b,
      "--h",
      args.h,
      "--d",
      args.d,
      "--mask",
      mask,
    ],
    { encoding: "utf8" },
  );
  row.memory = JSON.parse(mem.trim().split("\n").pop());
  rows.push(row);
  const ms = (x) => (x?.ms === undefined ? "n/a" : `${x.ms.toFixed(1)} ms`);
  const ratio = (x, y) => (x?.ms && y?.ms ? `${(x.ms / y.ms).toFixed(2)}x` : "n/a");
  console.log(
    `seq ${s}: native.cpu fwd ${ms(row["native.cpu fwd"])} (ort.fused ${ms(row["ort.fused fwd"])}, ort.fused/native ${ratio(row["ort.fused fwd"], row["native.cpu fwd"])}; ` +
      `reference ${ms(row["reference fwd"])}, reference/native ${ratio(row["reference fwd"], row["native.cpu fwd"])})  ` +
      `fwd+bwd ${ms(row["native.cpu fwd+bwd"])} (ort.native ${ms(row["ort.native fwd+bwd"])}, ort.native/native ${ratio(row["ort.native fwd+bwd"], row["native.cpu fwd+bwd"])})  ` +
      `peak RSS +${row.memory.peakRssGrowthMiB.toFixed(1)} MiB`,
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
  benchmark: "native.cpu vs the float64 reference and ONNX Runtime CPU attention",
  date: new Date().toISOString(),
  commit: git("git rev-parse HEAD"),
  dirty: git("git status --porcelain -- native packages/native benchmarks/native-cpu") !== "",
  machine: {
    cpu: os.cpus()[0]?.model,
    cores: os.cpus().length,
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    platform: `${os.platform()} ${os.release()}`,
    loadAverage: [loadBefore, +os.loadavg()[0].toFixed(2)],
  },
  versions: {
    node: process.version,
    "onnxruntime-node": ort.env.versions.node,
    nativeBackends: native.loadBinding().backends(),
  },
  config: {
    b,
    h,
    d,
    mask,
    dtype: "fp32",
    threads: `native.cpu ${process.env.TE_NATIVE_THREADS ?? "all cores"}, ORT default intra-op pool (all cores)`,
    timing: "median of runs after one warm-up run",
    memory:
      "max RSS growth of one native.cpu forward+backward in a fresh process (inputs allocated before the baseline)",
  },
  rows,
};
const resultsDir = path.join(root, "benchmarks/results");
mkdirSync(resultsDir, { recursive: true });
const file = path.join(resultsDir, `native-cpu-${mask}.json`);
writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
console.log(`recorded ${path.relative(root, file)}`);
