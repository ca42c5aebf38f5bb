#!/usr/bin/env bash
# Here (after pnpm install): lays out a GPU job folder for the subgroup-matrix work (first argument;
# .gpu-jobs/wgmatrix by default, ignored): bundle/ from webgpu_bundle.sh, the probes of scripts/gpu/webgpu-tuning/
# named in MATRIX_SCRIPTS, job.sh (a copy of webgpu-tuning/$JOB_SCRIPT, matrix-job.sh by default: the
# standalone probes; flash-matrix-job.sh: @te/webgpu's matrix passes, which also takes matrix-variants.json and
# matrix-backward-variants.json as variants.json and backward-variants.json), budget (JOB_BUDGET seconds, 150 by
# default), steps (JOB_STEPS, if set: the steps flash-matrix-job.sh runs), bench-args (JOB_BENCH_ARGS, if set:
# arguments that override every bench's), conf-extra (JOB_CONF_EXTRA, if set: flash-matrix-job.sh's extra
# conformance runs) and READY last. About 5 MB.
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
if [[ -n ${JOB_STEPS:-} ]]; then echo "$JOB_STEPS" > "$dir/steps"; else rm -f "$dir/steps"; fi
if [[ -n ${JOB_BENCH_ARGS:-} ]]; then echo "$JOB_BENCH_ARGS" > "$dir/bench-args"; else rm -f "$dir/bench-args"; fi
if [[ -n ${JOB_CONF_EXTRA:-} ]]; then echo "$JOB_CONF_EXTRA" > "$dir/conf-extra"; else rm -f "$dir/conf-extra"; fi
du -sh "$dir"
touch "$dir/READY"
