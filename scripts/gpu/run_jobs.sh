#!/usr/bin/env bash
# On the GPU machine, from the repo root (carry ".gpu" and ".gpu-jobs"): runs every queued job of
# .gpu-jobs/ (those with a READY file) in one call, so that several pieces of work share one machine start.
# Each job is a folder with job.sh (the GPU part), optionally build.sh (CPU only) and budget (seconds for
# job.sh). Both scripts run from the repo root with JOB_DIR (the job's folder) and JOB_OUT (an empty folder
# whose contents come back as $OUT/NAME.tgz). Builds run first, all at once; then each job.sh alone on
# the GPU, so that timings do not disturb each other.
#   bash scripts/gpu/run_jobs.sh [NAME ...]   (default: every READY job)
set -uo pipefail
source .gpu/env.sh > /tmp/run_jobs_env.txt 2>&1
out=${OUT:-/tmp/run_jobs_out}
work=/tmp/run_jobs
rm -rf "$work" && mkdir -p "$work" "$out"
if [[ $# -gt 0 ]]; then names=("$@"); else
  names=()
  for d in .gpu-jobs/*/; do [[ -f $d/READY ]] && names+=("$(basename "$d")"); done
fi
echo "jobs: ${names[*]}"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader
for n in "${names[@]}"; do
  mkdir -p "$work/$n"
  cp /tmp/run_jobs_env.txt "$work/$n/env.txt"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$work/$n/machine.txt"
  if [[ -f .gpu-jobs/$n/build.sh ]]; then
    ( start=$(date +%s)
      JOB_DIR=$PWD/.gpu-jobs/$n JOB_OUT=$work/$n timeout "${BUILD_LIMIT:-300}" bash ".gpu-jobs/$n/build.sh" > "$work/$n/build.log" 2>&1
      echo "$? $(( $(date +%s) - start ))s" > "$work/$n/build.rc" ) &
  fi
done
wait
for n in "${names[@]}"; do
  budget=$(cat ".gpu-jobs/$n/budget" 2>/dev/null || echo 60)
  start=$(date +%s)
  JOB_DIR=$PWD/.gpu-jobs/$n JOB_OUT=$work/$n timeout "$budget" bash ".gpu-jobs/$n/job.sh" > "$work/$n/log.txt" 2>&1
  echo "$? $(( $(date +%s) - start ))s" > "$work/$n/job.rc"
  tar czf "$out/$n.tgz" -C "$work/$n" .
done
for n in "${names[@]}"; do
  echo "== $n: build $(cat "$work/$n/build.rc" 2>/dev/null || echo none), job $(cat "$work/$n/job.rc") (rc, seconds; budget $(cat ".gpu-jobs/$n/budget" 2>/dev/null || echo 60)s)"
  [[ -f $work/$n/build.rc && $(cut -d' ' -f1 "$work/$n/build.rc") != 0 ]] && tail -n 15 "$work/$n/build.log"
  tail -n "${TAIL_LINES:-12}" "$work/$n/log.txt"
done
exit 0
