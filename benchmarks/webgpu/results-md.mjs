// Writes the Markdown summary of a bench.mjs JSON result (webgpu_run.sh's $OUT/webgpu-bench.json):
//   node benchmarks/webgpu/results-md.mjs RESULT.json MACHINE.txt > benchmarks/results/webgpu-bench-h100.md
// (RESULT.json may also be the bench's log, for a run stopped before it wrote its JSON).
import { readFileSync } from "node:fs";

const [resultPath, machinePath] = process.argv.slice(2);
// RESULT.json, or bench.log (one JSON line per measurement) when the run was stopped before writing it.
function load(path) {
  const text = readFileSync(path, "utf8");
  try {
    return JSON.parse(text);
  } catch {
    const results = text
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l));
    const device = /te device: (\{.*?\}) features: (.*)/.exec(text);
    const meta = { b: "?", h: "?", reps: "?", warmup: "?", adapter: device ? JSON.parse(device[1]) : null };
    return { meta: { ...meta, features: device ? device[2].split(",") : [] }, checks: [], results };
  }
}
const { meta, checks, results } = load(resultPath);
const machine = machinePath ? readFileSync(machinePath, "utf8").trim() : "";
const byKey = new Map();
for (const r of results) {
  const key = `${r.dtype} | ${r.d} | ${r.mask} | ${r.seq} | ${r.pass}`;
  if (!byKey.has(key)) byKey.set(key, {});
  byKey.get(key)[r.backend] = r;
}
// tfjs runs fp32 only: fp16 rows are compared with its fp32 time of the same shape, as bench.ts's table does.
for (const r of results) {
  if (r.backend !== "tfjs-webgpu" || r.dtype !== "fp32") continue;
  const fp16 = byKey.get(`fp16 | ${r.d} | ${r.mask} | ${r.seq} | ${r.pass}`);
  if (fp16 && !fp16["tfjs-webgpu"]) fp16["tfjs-webgpu"] = r;
}
const ok = (r) => r && !r.skipped && Number.isFinite(r.ms);
const ms = (r) => (ok(r) ? r.ms.toFixed(2) : "-");
const mib = (r) => (ok(r) ? (r.peakBytes / 2 ** 20).toFixed(1) : "-");
const ratio = (slow, fast) => (ok(slow) && ok(fast) ? `${(slow.ms / fast.ms).toFixed(2)}x` : "-");
const piped = results.some((r) => r.pipelinedMs);
const pms = (r) => (ok(r) && r.pipelinedMs ? r.pipelinedMs.toFixed(2) : "-");
const pratio = (slow, fast) =>
  ok(slow) && ok(fast) && slow.pipelinedMs && fast.pipelinedMs
    ? `${(slow.pipelinedMs / fast.pipelinedMs).toFixed(2)}x`
    : "-";
const timed = results.some((r) => r.gpuMs);
const gms = (r) => (ok(r) && r.gpuMs ? r.gpuMs.toFixed(2) : "-");
const gratio = (slow, fast) =>
  ok(slow) && ok(fast) && slow.gpuMs && fast.gpuMs ? `${(slow.gpuMs / fast.gpuMs).toFixed(2)}x` : "-";
const lines = [
  "# webgpu.flash vs webgpu.unfused vs tfjs-webgpu (Node, Dawn, NVIDIA Vulkan)",
  "",
  "```",
  machine,
  `adapter ${JSON.stringify(meta.adapter)}`,
  `features ${meta.features.join(", ")}`,
  `b=${meta.b} h=${meta.h}; median of ${meta.reps} calls after ${meta.warmup} warm-up calls, each ended by queue.onSubmittedWorkDone()`,
  "```",
  "",
  "ms per call; MiB = peak GPU buffer bytes held during the call beyond the inputs (outputs, saved state and",
  "gradients included; tfjs: bytes in use in its buffer manager). tfjs runs matMul, mul(scale), add(mask),",
  "softmax, matMul on [b, h, s, d] inputs, fp32 only (tfjs has no fp16 tensors); fwd+bwd is tf.grads.",
  ...(piped
    ? [
        "Pipelined: the mean of the same number of calls submitted back to back with one wait at the end (GPU time",
        "per call once each call's host and Dawn callback overhead overlaps the GPU work).",
      ]
    : []),
  ...(timed
    ? [
        "GPU: the mean over calls of their GPU time by timestamps around compute passes (ours: the union of each",
        "call's pass intervals, one call at a time, or their span in runs before that was measured; tfjs: the sum",
        "of its kernels' times from its own tf.time), host left out.",
      ]
    : []),
  "fp16 rows compare with tfjs's fp32 time of the same shape.",
  "",
  `| dtype | d | mask | seq | pass | flash ms | unfused ms | tfjs ms | tfjs/flash | unfused/flash | flash MiB | unfused MiB | tfjs MiB |${piped ? " flash pipelined | tfjs pipelined | tfjs/flash pipelined |" : ""}${timed ? " flash GPU | tfjs GPU | tfjs/flash GPU |" : ""}`,
  `|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|${piped ? "---:|---:|---:|" : ""}${timed ? "---:|---:|---:|" : ""}`,
];
for (const [key, row] of byKey) {
  const f = row["webgpu.flash"];
  const u = row["webgpu.unfused"];
  const t = row["tfjs-webgpu"];
  lines.push(
    `| ${key} | ${ms(f)} | ${ms(u)} | ${ms(t)} | ${ratio(t, f)} | ${ratio(u, f)} | ${mib(f)} | ${mib(u)} | ${mib(t)} |${piped ? ` ${pms(f)} | ${pms(t)} | ${pratio(t, f)} |` : ""}${timed ? ` ${gms(f)} | ${gms(t)} | ${gratio(t, f)} |` : ""}`,
  );
}
const skips = [
  ...new Set(
    results
      .filter((r) => r.skipped)
      .map((r) => `${r.backend} ${r.dtype} d${r.d} ${r.mask} s${r.seq} ${r.pass}: ${r.skipped}`),
  ),
];
if (skips.length) lines.push("", "Not measured:", "", ...skips.map((s) => `- ${s}`));
if (checks.length)
  lines.push(
    "",
    "tfjs output vs webgpu.flash output (fp32, max abs difference):",
    "",
    ...checks.map((c) => `- d${c.d} ${c.mask} s${c.seq}: ${c.tfjsVsFlashMaxAbs.toExponential(2)}`),
  );
console.log(lines.join("\n"));
