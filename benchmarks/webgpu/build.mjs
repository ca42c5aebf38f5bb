// Bundles bench.ts with @te/core and @te/webgpu into dist/bench.mjs and copies Dawn's Node binding (the
// `webgpu` package, linux-x64 only) beside it, so the GPU machine needs nothing but Node and a Vulkan loader:
//   node benchmarks/webgpu/build.mjs      (here; dist/ is ignored, carry "benchmarks/webgpu/dist")
//   node benchmarks/webgpu/dist/bench.mjs --out $OUT/webgpu-bench.json   (there)
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
const here = dirname(fileURLToPath(import.meta.url));
// esbuild comes with the browser example's dev dependencies (benchmarks/ has no package of its own).
const { build } = await import(createRequire(resolve(here, "../../examples/webgpu-browser/package.json")).resolve("esbuild"));
const out = resolve(here, "dist");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [resolve(here, "bench.ts")],
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  outfile: resolve(out, "bench.mjs"),
  external: ["webgpu"],
  // @te/core and @te/webgpu resolve through the example's workspace links.
  nodePaths: [resolve(here, "../../examples/webgpu-browser/node_modules")],
  logLevel: "warning",
});
const requireFromWebgpu = createRequire(resolve(here, "../../packages/webgpu/package.json"));
const dawn = dirname(requireFromWebgpu.resolve("webgpu/package.json"));
const target = resolve(out, "node_modules/webgpu");
for (const file of ["package.json", "index.js", "dist/linux-x64"]) cpSync(resolve(dawn, file), resolve(target, file), { recursive: true });
console.log(`built ${out} (bench.mjs + node_modules/webgpu)`);
