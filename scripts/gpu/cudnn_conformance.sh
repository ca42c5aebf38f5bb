#!/usr/bin/env bash
# On the GPU machine (carry ".gpu" and ".gpu-cudnn"): builds the CUDA addon (scripts/gpu/cudnn_addon_check.sh),
# then runs the conformance cases on cuda.cudnn (fp16, bf16) through a te CLI bundle of the current
# sources in .gpu-cudnn (made like scripts/gpu/bundle.sh's, so cuda.cudnn is registered).
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
bash scripts/gpu/cudnn_addon_check.sh || exit 1
source .gpu/env.sh > /dev/null
export TE_NATIVE_ADDON=/tmp/te-addon/out/te_native.node
for dtype in fp16 bf16; do
  echo "== te conformance --backend cuda.cudnn --dtype $dtype"
  node .gpu-cudnn/te-cli.mjs conformance conformance/cases --backend cuda.cudnn --dtype "$dtype" \
    > "$out/conf_cuda.cudnn_$dtype.txt" 2>&1
  grep -v "^PASS" "$out/conf_cuda.cudnn_$dtype.txt" | tail -25
done
