#!/usr/bin/env bash
# Here (no GPU), from the repo root: fills the ignored .gpu/ with what a Node run on the GPU machine
# needs and that machine lacks: Node (../shared/gpu/prepare.sh), node-addon-api's headers, one esbuild
# bundle of the te CLI with the workspace packages inlined (no node_modules travel). The conformance
# cases travel with the checkout (conformance/cases). Then on the GPU machine (carry ".gpu"): bash scripts/gpu/node_conformance.sh
#   bash scripts/gpu/bundle.sh [OUT_DIR]: OUT_DIR (default .gpu) gets the headers and the bundles; Node and
#   env.sh are prepared only into .gpu (another dir is used beside it).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
out=${1:-.gpu}
mkdir -p "$out"
if [[ $out == .gpu ]]; then bash ../shared/gpu/prepare.sh > /dev/null; fi
api=$(node -e 'console.log(require("path").dirname(require.resolve("node-addon-api/package.json", {paths: ["packages/native"]})))')
rm -rf "$out"/node-addon-api && mkdir -p "$out"/node-addon-api && cp "$api"/*.h "$out"/node-addon-api/
esbuild=$(node -e 'console.log(require.resolve("esbuild", {paths: [require("path").dirname(require.resolve("tsup/package.json", {paths: ["packages/cli"]}))]}))')
# The CLI loads backend packages by name at run time, and every package must share one @te/core (its
# backend registry), so @te/core and @te/native become packages of their own under OUT_DIR/node_modules
# and the CLI bundle imports them; the other optional backends stay out (they need their own modules).
rm -rf "$out"/node_modules && mkdir -p "$out"/node_modules/@te/core/dist "$out"/node_modules/@te/native/dist
node -e '
const esbuild = require(process.argv[1]);
const out = process.argv[2];
const common = { bundle: true, platform: "node", format: "esm", target: "node20", logLevel: "warning",
  banner: { js: "import { createRequire as teBundleRequire } from \"module\"; const require = teBundleRequire(import.meta.url);" } };
const optional = ["onnxruntime-node", "onnxruntime-web", "@tensorflow/*", "webgpu", "@te/onnxruntime", "@te/tfjs", "@te/webgpu"];
esbuild.buildSync({ ...common, entryPoints: ["packages/core/src/index.ts"], outfile: out + "/node_modules/@te/core/dist/index.js" });
esbuild.buildSync({ ...common, entryPoints: ["packages/native/src/index.ts"], outfile: out + "/node_modules/@te/native/dist/index.js", external: ["@te/core"] });
esbuild.buildSync({ ...common, entryPoints: ["packages/cli/src/te.ts"], outfile: out + "/te-cli.mjs", external: ["@te/core", "@te/native", ...optional] });
' "$esbuild" "$out"
for pkg in core native; do
  node -e 'const p = require(process.argv[1]); console.log(JSON.stringify({ name: p.name, version: p.version, type: "module", main: "./dist/index.js", exports: { ".": "./dist/index.js", "./package.json": "./package.json" } }))' \
    "$root/packages/$pkg/package.json" > "$out"/node_modules/@te/$pkg/package.json
done
rm -rf "$out"/cases
# The device machine gets no .git: the commit the bundle was made from travels as a file.
echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo +changes)" > "$out"/commit.txt
du -sh "$out"
