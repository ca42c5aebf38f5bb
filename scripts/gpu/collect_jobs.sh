#!/usr/bin/env bash
# Here, after a run of scripts/gpu/run_jobs.sh: unpacks each returned NAME.tgz into
# .gpu-results/NAME/ROUND/, marks it DONE and takes the job off the queue (removes .gpu-jobs/NAME/READY).
#   bash scripts/gpu/collect_jobs.sh FILES_DIR ROUND
set -euo pipefail
root=$(git rev-parse --show-toplevel)
files=${1:?FILES_DIR}
round=${2:?ROUND}
for t in "$files"/*.tgz; do
  n=$(basename "$t" .tgz)
  dest=$root/.gpu-results/$n/$round
  rm -rf "$dest" && mkdir -p "$dest"
  tar xzf "$t" -C "$dest"
  rm -f "$root/.gpu-jobs/$n/READY"
  touch "$dest/DONE"
  echo "$n -> $dest"
done
