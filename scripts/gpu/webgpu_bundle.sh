#!/usr/bin/env bash
# Here (after pnpm build): fills OUT (first argument; .gpu-webgpu/ by default, ignored; carry it with .gpu, or
# name a folder inside a GPU job such as .gpu-jobs/webgpu/bundle) with what the GPU machine needs to
# run @te/webgpu there: the te CLI with @te/core and @te/webgpu as packages of their own (one shared backend
# registry, as scripts/gpu/bundle.sh lays out .gpu), the benchmark bundle (benchmarks/webgpu/build.mjs), and
# Dawn's Node binding with dawn.node stripped and xz-compressed (21 MB -> 4.5 MB) and bench.mjs xz-compressed
# (2 MB -> 0.3 MB), so that a bundle stays under 5 MB (webgpu_run.sh and GPU jobs unpack them).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-.gpu-webgpu}
rm -rf "$out" && mkdir -p "$out"/node_modules/@te/core/dist "$out"/node_modules/@te/webgpu/dist
# build.mjs bundles @te/webgpu from its dist/: rebuilt here, so that the bench times the source as it is.
(cd packages/webgpu && pnpm build > /dev/null)
node benchmarks/webgpu/build.mjs "$out" > /dev/null
esbuild=$(node -e 'console.log(require.resolve("esbuild", {paths: ["benchmarks/webgpu"]}))')
node -e '
const esbuild = require(process.argv[1]);
const out = process.argv[2];
const common = { bundle: true, platform: "node", format: "esm", target: "node20", logLevel: "warning",
  banner: { js: "import { createRequire as teBundleRequire } from \"module\"; const require = teBundleRequire(import.meta.url);" } };
const others = ["onnxruntime-node", "onnxruntime-web", "@tensorflow/*", "@te/native", "@te/onnxruntime", "@te/tfjs"];
esbuild.buildSync({ ...common, entryPoints: ["packages/core/src/index.ts"], outfile: out + "/node_modules/@te/core/dist/index.js" });
esbuild.buildSync({ ...common, entryPoints: ["packages/webgpu/src/index.ts"], outfile: out + "/node_modules/@te/webgpu/dist/index.js", external: ["@te/core", "webgpu"] });
esbuild.buildSync({ ...common, entryPoints: ["packages/cli/src/te.ts"], outfile: out + "/te-cli.mjs", external: ["@te/core", "@te/webgpu", "webgpu", ...others] });
' "$esbuild" "$out"
for pkg in core webgpu; do
  node -e 'const p = require(process.argv[1]); console.log(JSON.stringify({ name: p.name, version: p.version, type: "module", main: "./dist/index.js", exports: { ".": "./dist/index.js", "./package.json": "./package.json" } }))' \
    "$PWD/packages/$pkg/package.json" > "$out"/node_modules/@te/$pkg/package.json
done
cp benchmarks/webgpu/adapter-probe.mjs "$out"/
strip --strip-unneeded "$out"/node_modules/webgpu/dist/linux-x64/dawn.node
xz -9e -T2 "$out"/node_modules/webgpu/dist/linux-x64/dawn.node
xz -9e "$out"/bench.mjs
echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- packages/webgpu packages/core benchmarks/webgpu || echo +changes)" > "$out"/commit.txt
du -sh "$out"
