// Markdown tables of the round-B job's sweeps: node sweep-md.mjs OUT > part.md (OUT: the job's result folder).
// One row per variant: median and pipelined ms, TFLOP/s (of the pipelined ms), and the max |difference| of its
// output (and gradients, for backward sweeps) from the default tiles.
import { readFileSync } from "node:fs";
const out = process.argv[2];
const read = (f) => {
  try {
    return readFileSync(`${out}/${f}`, "utf8").split("\n");
  } catch {
    return [];
  }
};
for (const sweep of ["fwd64", "fwd128", "bwd64", "bwd128"]) {
  const checks = new Map();
  for (const line of read(`sweep_${sweep}.err`)) {
    if (!line.startsWith("check ")) continue;
    const c = JSON.parse(line.slice(6));
    checks.set(`webgpu.flash:${c.variant}`, c.vsDefaultTilesMaxAbs);
  }
  const rows = read(`sweep_${sweep}.log`)
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
  if (rows.length === 0) continue;
  const base = rows.find((r) => r.backend === "webgpu.flash");
  console.log(`\n### ${sweep} (d${rows[0].d}, s${rows[0].seq}, ${rows[0].pass})\n`);
  console.log("| variant | ms | pipelined ms | TFLOP/s | vs default | max abs diff |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const r of rows) {
    const name = r.backend === "webgpu.flash" ? "default" : r.backend.replace("webgpu.flash:", "");
    if (r.skipped) {
      console.log(`| ${name} | - | - | - | - | skipped: ${r.skipped.slice(0, 80)} |`);
      continue;
    }
    const flops = r.tflops * r.ms;
    const speed = base && !base.skipped ? `${(base.pipelinedMs / r.pipelinedMs).toFixed(2)}x` : "-";
    const diff = r.backend === "webgpu.flash" ? "" : String(checks.get(r.backend) ?? "not checked");
    console.log(
      `| ${name} | ${r.ms.toFixed(2)} | ${r.pipelinedMs.toFixed(2)} | ${(flops / r.pipelinedMs).toFixed(1)} | ${speed} | ${diff} |`,
    );
  }
}
