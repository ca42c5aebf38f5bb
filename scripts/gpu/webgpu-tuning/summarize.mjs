// One line per (d, seq, pass) of a bench log (its JSON lines, there even when the bench was cut short): every backend's median ms / pipelined ms, skips by name.
import { readFileSync } from "node:fs";
const results = readFileSync(process.argv[2], "utf8")
  .split("\n")
  .filter((line) => line.startsWith("{"))
  .map((line) => JSON.parse(line));
const rows = new Map();
for (const r of results) {
  const key = `d${r.d} s${r.seq} ${r.pass}`;
  const cell = r.skipped
    ? `${r.backend.replace("webgpu.flash", "F")} skip`
    : `${r.backend.replace("webgpu.flash", "F")} ${r.ms.toFixed(2)}/${(r.pipelinedMs ?? Number.NaN).toFixed(2)}`;
  rows.set(key, [...(rows.get(key) ?? []), cell]);
}
for (const [key, cells] of rows) console.log(`${key}: ${cells.join(", ")}`);
