// Bundles bench.ts (with @te/core, @te/webgpu and tfjs) into OUT/bench.mjs and copies Dawn's Node binding
// (the `webgpu` package, linux-x64 only) to OUT/node_modules/webgpu, so the GPU machine needs nothing but
// Node and a Vulkan loader. OUT is the first argument, dist/ beside this file by default (ignored).
//   node benchmarks/webgpu/build.mjs [OUT]
//   node OUT/bench.mjs --out results.json
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const requireHere = createRequire(resolve(here, "package.json"));
const { build } = await import(requireHere.resolve("esbuild"));
const out = resolve(process.argv[2] ?? resolve(here, "dist"));
rmSync(resolve(out, "bench.mjs"), { force: true });
rmSync(resolve(out, "node_modules/webgpu"), { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [resolve(here, "bench.ts")],
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  outfile: resolve(out, "bench.mjs"),
  external: ["webgpu"],
  banner: {
    js: 'import { createRequire as benchRequire } from "node:module"; const require = benchRequire(import.meta.url);',
  },
  logLevel: "warning",
});
const dawn = dirname(requireHere.resolve("webgpu/package.json"));
const target = resolve(out, "node_modules/webgpu");
for (const file of ["package.json", "index.js", "dist/linux-x64"])
  cpSync(resolve(dawn, file), resolve(target, file), { recursive: true });
console.log(`built ${out} (bench.mjs + node_modules/webgpu)`);
