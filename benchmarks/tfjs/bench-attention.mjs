#!/usr/bin/env node
// Attention on TensorFlow.js tensors, per tfjs backend (cpu, wasm):
//   tfjs.native  TE's unfused attention as tfjs ops (matMul, masked softmax, matMul)
//   tfjs.fused   TE's CPU kernel (native.cpu from @te/native) registered as a tfjs kernel, when @te/native is built
// over a few sequence lengths, forward and forward+backward, printing median times and ratios and
// recording them under benchmarks/results/ with the machine, versions and commit.
//
// Usage: pnpm --filter @te/tfjs build && node benchmarks/tfjs/bench-attention.mjs
//        [--seqs 128,256,512,1024] [--b 1] [--h 8] [--d 64] [--mask causal|no_mask] [--backends cpu,wasm] [--budget-ms 3000]
import { execSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const adapterDir = path.join(root, "packages/tfjs");
// Resolve packages as @te/tfjs sees them (benchmarks/tfjs is not a workspace package of its own).
const requireFromAdapter = createRequire(path.join(adapterDir, "package.json"));
const load = (specifier) => import(pathToFileURL(requireFromAdapter.resolve(specifier)).href);

const { values: args } = parseArgs({
  options: {
    seqs: { type: "string", default: "128,256,512,1024" },
    b: { type: "string", default: "1" },
    h: { type: "string", default: "8" },
    d: { type: "string", default: "64" },
    mask: { type: "string", default: "causal" },
    backends: { type: "string", default: "cpu,wasm" },
    "budget-ms": { type: "string", default: "3000" },
  },
});
const seqs = args.seqs.split(",").map(Number);
const [b, h, d] = [Number(args.b), Number(args.h), Number(args.d)];
const budgetMs = Number(args["budget-ms"]);

const tf = await load("@tensorflow/tfjs");
await load("@tensorflow/tfjs-backend-wasm");
const core = await load("@te/core");
// Importing @te/tfjs registers tfjs.native and tfjs.fused; @te/native (when built) registers native.cpu.
await import(pathToFileURL(path.join(adapterDir, "dist/index.js")).href);
const nativeCpu = await load("@te/native").then(
  () => "loaded",
  (e) => `not loaded: ${e.message.split("\n")[0]}`,
);

/** Median wall time of `run` after one warm-up, over as many runs as fit the budget (at least 3). */
async function time(run) {
  await run();
  const times = [];
  const started = performance.now();
  while (times.length < 3 || (performance.now() - started < budgetMs && times.length < 50)) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  times.sort((x, y) => x - y);
  return { ms: times[times.length >> 1], runs: times.length };
}

const candidates = ["tfjs.native", "tfjs.fused"];
const rows = [];
for (const backendName of args.backends.split(",")) {
  await tf.setBackend(backendName);
  await tf.ready();
  for (const s of seqs) {
    const p = core.makeParams({
      b,
      h,
      d,
      sq: s,
      device: "tfjs",
      maskType: args.mask,
      qkvFormat: "bshd",
      isTraining: true,
    });
    const q = tf.randomNormal([b, s, h, d]);
    const k = tf.randomNormal([b, s, h, d]);
    const v = tf.randomNormal([b, s, h, d]);
    const dO = tf.randomNormal([b, s, h, d]);
    const row = { tfjsBackend: backendName, s, results: {} };
    for (const id of candidates) {
      const backend = core.getBackend(id);
      const verdict = backend
        ? backend.explain(p, { cudaArch: null, env: process.env })
        : { ok: false, reasons: [{ rule: "not_registered", message: "not registered" }] };
      if (!verdict.ok) {
        row.results[id] = { skipped: verdict.reasons.map((r) => `${r.message} [${r.rule}]`).join("; ") };
        continue;
      }
      // Both through the backend interface (forward, then backward from its saved state), outputs read back.
      const inputs = { q, k, v };
      const forward = await time(async () => {
        const r = await backend.forward(inputs, p);
        r.o.dataSync();
        r.saved.release();
        tf.dispose([r.o, r.lse]);
      });
      const training = await time(async () => {
        const r = await backend.forward(inputs, p);
        const g = await backend.backward(r.saved, dO, p);
        for (const t of [g.dq, g.dk, g.dv]) t.dataSync();
        r.saved.release();
        tf.dispose([r.o, r.lse, g.dq, g.dk, g.dv]);
      });
      row.results[id] = {
        forwardMs: forward.ms,
        forwardBackwardMs: training.ms,
        runs: forward.runs + training.runs,
      };
    }
    tf.dispose([q, k, v, dO]);
    rows.push(row);
    const cells = candidates.map((id) => {
      const r = row.results[id];
      return r.skipped
        ? `${id}: skipped`
        : `${id}: fwd ${r.forwardMs.toFixed(1)} ms, fwd+bwd ${r.forwardBackwardMs.toFixed(1)} ms`;
    });
    const nat = row.results["tfjs.native"];
    const fused = row.results["tfjs.fused"];
    const ratio =
      nat?.forwardMs && fused?.forwardMs
        ? `  fused speed-up fwd ${(nat.forwardMs / fused.forwardMs).toFixed(2)}x, fwd+bwd ${(nat.forwardBackwardMs / fused.forwardBackwardMs).toFixed(2)}x`
        : "";
    console.log(`${backendName.padEnd(4)} s=${String(s).padStart(5)}  ${cells.join("  |  ")}${ratio}`);
  }
}
// wasm against cpu for the same backend and length
for (const r of rows.filter((x) => x.tfjsBackend === "wasm")) {
  const c = rows.find((x) => x.tfjsBackend === "cpu" && x.s === r.s);
  const n = r.results["tfjs.native"];
  const cn = c?.results["tfjs.native"];
  if (n?.forwardMs && cn?.forwardMs)
    console.log(
      `tfjs.native s=${r.s}: wasm is ${(cn.forwardMs / n.forwardMs).toFixed(2)}x cpu (fwd), ${(cn.forwardBackwardMs / n.forwardBackwardMs).toFixed(2)}x (fwd+bwd)`,
    );
}
for (const [id, r] of Object.entries(rows[0]?.results ?? {}))
  if (r.skipped) console.log(`${id} skipped: ${r.skipped}`);

const git = (cmd) => {
  try {
    return execSync(`git ${cmd}`, { cwd: root, encoding: "utf8" }).trim();
  } catch {
    return null;
  }
};
const pkgVersion = (name) => {
  try {
    return requireFromAdapter(`${name}/package.json`).version;
  } catch {
    return null;
  }
};
const record = {
  benchmark:
    "tfjs attention: TE unfused as tfjs ops (tfjs.native) vs TE CPU kernel as a tfjs kernel (tfjs.fused), per tfjs backend",
  date: new Date().toISOString(),
  commit: git("rev-parse HEAD"),
  dirty: (git("status --porcelain -- packages/tfjs benchmarks/tfjs") ?? "") !== "",
  machine: {
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.platform()} ${os.release()}`,
    loadAverage: os.loadavg().map((x) => Math.round(x * 10) / 10),
  },
  versions: {
    node: process.version,
    "@tensorflow/tfjs": pkgVersion("@tensorflow/tfjs"),
    "@tensorflow/tfjs-backend-wasm": pkgVersion("@tensorflow/tfjs-backend-wasm"),
  },
  config: {
    b,
    h,
    hg: h,
    d,
    mask: args.mask,
    dtype: "fp32",
    timing: "median wall time after a warm-up, outputs read back (dataSync)",
  },
  rows,
};
const out = path.join(
  root,
  "benchmarks/results",
  `tfjs-${args.backends.replaceAll(",", "-")}-${args.mask}.json`,
);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(record, null, 2)}\n`);
console.log(`recorded in ${path.relative(root, out)}`);
