#!/usr/bin/env bash
# Here (after pnpm install): lays out a GPU job folder for the subgroup-matrix work (first argument;
# .gpu-jobs/wgmatrix by default, ignored): bundle/ from webgpu_bundle.sh, the probes of scripts/gpu/webgpu-tuning/
# named in MATRIX_SCRIPTS, job.sh (a copy of webgpu-tuning/$JOB_SCRIPT, matrix-job.sh by default: the
# standalone probes; flash-matrix-job.sh: @te/webgpu's matrix passes, which also takes matrix-variants.json and
# matrix-backward-variants.json as variants.json and backward-variants.json), budget (JOB_BUDGET seconds, 150 by default), and READY last. About 5 MB.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-.gpu-jobs/wgmatrix}
job=${JOB_SCRIPT:-matrix-job.sh}
rm -f "$dir/READY" && mkdir -p "$dir"
rm -f "$dir"/*.mjs
bash scripts/gpu/webgpu_bundle.sh "$dir/bundle" > /dev/null
for f in ${MATRIX_SCRIPTS:-subgroup-matrix-probe subgroup-matrix-layout subgroup-matrix-attention}; do
  cp "scripts/gpu/webgpu-tuning/$f.mjs" "$dir/"
done
cp scripts/gpu/webgpu-tuning/matrix-device.mjs "$dir/"
cp "scripts/gpu/webgpu-tuning/$job" "$dir/job.sh"
cp scripts/gpu/webgpu-tuning/matrix-variants.json "$dir/variants.json"
cp scripts/gpu/webgpu-tuning/matrix-backward-variants.json "$dir/backward-variants.json"
echo "${JOB_BUDGET:-150}" > "$dir/budget"
du -sh "$dir"
touch "$dir/READY"
