#!/usr/bin/env bash
# On the GPU machine (env.sh sourced): builds the CUDA addon from a job's source snapshot.
#   bash scripts/gpu/job_build_addon.sh SRC_DIR BUILD_DIR   ->  BUILD_DIR/out/te_native.node
set -euo pipefail
src=${1:?SRC_DIR}
build=${2:?BUILD_DIR}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cmake -S "$src/packages/native" -B "$build" -DCMAKE_BUILD_TYPE=Release -DNODE_INCLUDE_DIR="$NODE_INCLUDE" \
  -DNODE_ADDON_API_DIR="$root/.gpu/node-addon-api" -DTE_ADDON_OUTPUT_DIR="$build/out" -DTE_NATIVE_CUDA=ON \
  -DTE_CUDA_GENCODE=-gencode=arch=compute_90a,code=sm_90a
cmake --build "$build" -j"$(nproc)"
