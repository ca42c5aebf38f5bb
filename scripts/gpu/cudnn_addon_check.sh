#!/usr/bin/env bash
# On the GPU machine: builds the te_native.node addon with CUDA (so with native/cudnn) from the carried
# sources and checks that it loads, lists cuda.cudnn and reports the loaded cuDNN version.
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
source .gpu/env.sh > /dev/null
cmake -S packages/native -B /tmp/te-addon -DCMAKE_BUILD_TYPE=Release -DNODE_INCLUDE_DIR="$NODE_INCLUDE" \
  -DNODE_ADDON_API_DIR="$PWD/.gpu/node-addon-api" -DTE_ADDON_OUTPUT_DIR=/tmp/te-addon/out -DTE_NATIVE_CUDA=ON \
  > "$out/addon_build.log" 2>&1 && cmake --build /tmp/te-addon -j"$(nproc)" >> "$out/addon_build.log" 2>&1 ||
  { echo "ADDON BUILD FAILED"; grep -m 20 -E "error" "$out/addon_build.log"; tail -5 "$out/addon_build.log"; exit 1; }
node -e 'const b = require("/tmp/te-addon/out/te_native.node");
console.log("addon backends:", b.backends(), "cudnnVersion:", b.cudnnVersion());'
