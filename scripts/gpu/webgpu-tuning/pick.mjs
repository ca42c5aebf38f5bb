// The fastest variant of sweeps (by pipelined ms of their slowest pass) whose check against the default
// tiles came out under 1e-4, printed as env assignments for a conformance run: node pick.mjs OUT sweep...
// (variants.mjs names the variants; tiles of several sweeps merge into one TE_WEBGPU_FLASH_TILES).
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
const [out, ...sweeps] = process.argv.slice(2);
const tiles = {};
const env = {};
const chosen = [];
for (const sweep of sweeps) {
  const variants = JSON.parse(
    execFileSync("node", [new URL("variants.mjs", import.meta.url).pathname, sweep], { encoding: "utf8" }),
  );
  const lines = (f) => {
    try {
      return readFileSync(`${out}/${f}`, "utf8").split("\n");
    } catch {
      return [];
    }
  };
  const ok = new Set();
  for (const line of lines(`sweep_${sweep}.err`)) {
    if (!line.startsWith("check ")) continue;
    const c = JSON.parse(line.slice(6));
    if (typeof c.vsDefaultTilesMaxAbs === "number" && c.vsDefaultTilesMaxAbs < 1e-4) ok.add(c.variant);
  }
  const worst = new Map();
  for (const line of lines(`sweep_${sweep}.log`)) {
    if (!line.startsWith("{")) continue;
    const r = JSON.parse(line);
    const ms = r.skipped ? Number.POSITIVE_INFINITY : r.pipelinedMs;
    worst.set(r.backend, Math.max(worst.get(r.backend) ?? 0, ms));
  }
  let best = { name: "default", ms: worst.get("webgpu.flash") ?? Number.POSITIVE_INFINITY };
  for (const v of variants) {
    const ms = worst.get(`webgpu.flash:${v.name}`);
    if (ok.has(v.name) && ms !== undefined && ms < best.ms) best = { name: v.name, ms };
  }
  const v = variants.find((x) => x.name === best.name);
  if (v) {
    Object.assign(tiles, v.tiles ?? {});
    Object.assign(env, v.env ?? {});
  }
  chosen.push(`${sweep}:${best.name}`);
}
if (Object.keys(tiles).length > 0) env.TE_WEBGPU_FLASH_TILES = JSON.stringify(tiles);
console.error(chosen.join(" "));
console.log(
  Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n"),
);
