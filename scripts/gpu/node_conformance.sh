#!/usr/bin/env bash
# On the GPU machine (carry ".gpu"; .gpu/ filled by scripts/gpu/bundle.sh): builds the te_native.node
# addon with the CUDA families from the carried sources, then runs the conformance cases on
# cuda.flash (fp16, bf16) and cuda.unfused (fp32, fp16, bf16) through the bundled te CLI.
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
source .gpu/env.sh > /dev/null
cmake -S packages/native -B /tmp/te-addon -DCMAKE_BUILD_TYPE=Release -DNODE_INCLUDE_DIR="$NODE_INCLUDE" \
  -DNODE_ADDON_API_DIR="$PWD/.gpu/node-addon-api" -DTE_ADDON_OUTPUT_DIR=/tmp/te-addon/out -DTE_NATIVE_CUDA=ON \
  > "$out/addon_build.log" 2>&1 && cmake --build /tmp/te-addon -j"$(nproc)" >> "$out/addon_build.log" 2>&1 ||
  { tail -30 "$out/addon_build.log"; exit 1; }
export TE_NATIVE_ADDON=/tmp/te-addon/out/te_native.node
node .gpu/te-cli.mjs info 2>&1 | head -30
for run in "cuda.flash fp16" "cuda.flash bf16" "cuda.unfused fp32" "cuda.unfused fp16" "cuda.unfused bf16"; do
  set -- $run
  echo "== te conformance --backend $1 --dtype $2"
  node .gpu/te-cli.mjs conformance conformance/cases --backend "$1" --dtype "$2" > "$out/conf_$1_$2.txt" 2>&1
  grep -v "^PASS" "$out/conf_$1_$2.txt" | tail -15
done
