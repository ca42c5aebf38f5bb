#!/usr/bin/env bash
# Here (after pnpm install): lays out the GPU job folder for the subgroup-matrix probes (first argument;
# .gpu-jobs/wgmatrix by default, ignored): bundle/ from webgpu_bundle.sh, the probes of scripts/gpu/webgpu-tuning/,
# job.sh (a copy of webgpu-tuning/matrix-job.sh), budget, and READY last. About 5 MB.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-.gpu-jobs/wgmatrix}
rm -f "$dir/READY" && mkdir -p "$dir"
bash scripts/gpu/webgpu_bundle.sh "$dir/bundle" > /dev/null
# MATRIX_SCRIPTS: which of the folder's scripts go (default all; the probe's findings are known by now)
for f in ${MATRIX_SCRIPTS:-subgroup-matrix-probe subgroup-matrix-layout subgroup-matrix-attention}; do
  cp "scripts/gpu/webgpu-tuning/$f.mjs" "$dir/"
done
cp scripts/gpu/webgpu-tuning/matrix-device.mjs "$dir/"
cp scripts/gpu/webgpu-tuning/matrix-job.sh "$dir/job.sh"
echo 150 > "$dir/budget"
du -sh "$dir"
touch "$dir/READY"
