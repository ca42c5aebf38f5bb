#!/usr/bin/env bash
# The GPU acceptance run as one job of scripts/gpu/run_jobs.sh: PyTorch's SDPA anchor, `te bench` of the
# three CUDA backends with the anchor in the same call (forward + backward, and the forward alone), the
# host-path and GPU-path error checks, the conformance cases on each CUDA backend in each dtype it claims, and the FP8 checks and timings
# (native/cudnn/tests/fp8_gpu.sh). Everything it needs is frozen into the job folder when it is queued, so
# it measures the checkout as it was then. summary.txt in the job's output is the verdict; logs beside it.
#   here:  bash scripts/gpu/acceptance.sh queue NAME   -> .gpu-jobs/NAME (READY); run it with run_jobs.sh NAME
#   there: build.sh / job.sh of that folder call this script's `build` and `run` (JOB_DIR, JOB_OUT set)
set -uo pipefail
case ${1:?queue NAME | build | run} in
queue)
  name=${2:?NAME}
  root=$(git rev-parse --show-toplevel)
  cd "$root" && bash scripts/gpu/job_snapshot.sh "$name" || exit 1
  dir=.gpu-jobs/$name
  cp scripts/gpu/acceptance.sh scripts/gpu/host_pointer_check.mjs scripts/gpu/cuda_runtime_check.mjs "$dir/"
  echo 'bash "$JOB_DIR/acceptance.sh" build' > "$dir/build.sh"
  echo 'bash "$JOB_DIR/acceptance.sh" run' > "$dir/job.sh"
  echo 540 > "$dir/budget"
  touch "$dir/READY"
  ;;
build)
  export CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc)")")}
  make -C "$JOB_DIR/src/native/cudnn/tests" -f fp8_test.mk -j6 > "$JOB_OUT/fp8_build.log" 2>&1 &
  bash scripts/gpu/job_build_addon.sh "$JOB_DIR/src" /tmp/acceptance-addon
  wait
  ;;
run)
  export TE_NATIVE_ADDON=/tmp/acceptance-addon/out/te_native.node
  cli="node $JOB_DIR/bundle/te-cli.mjs"
  o=$JOB_OUT s=$JOB_OUT/summary.txt
  : > "$s"
  t0=$(date +%s)
  at() { echo "$(($(date +%s) - t0)) s"; }
  {
    echo "commit $(cat "$JOB_DIR/commit.txt")"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    python3 -c 'import torch; print("torch", torch.__version__, "cudnn", torch.backends.cudnn.version())'
    node --version
  } >> "$s" 2>&1
  $cli info > "$o/te_info.txt" 2>&1
  PYTHONUNBUFFERED=1 timeout 90 python3 .gpu/torch_sdpa_anchor.py --json "$o/anchor.json" > "$o/anchor.log" 2>&1
  echo "anchor rc $? at $(at)" >> "$s"
  timeout 220 $cli bench --backend cuda.cudnn,cuda.flash,cuda.unfused --baseline cuda.unfused --dtype bf16 \
    --iters 30 --warmup 5 --anchor "$o/anchor.json" --forward --format markdown > "$o/te_bench.md" 2> "$o/te_bench.err"
  echo "bench rc $? at $(at)" >> "$s"
  for check in host_pointer_check cuda_runtime_check; do
    timeout 40 node "$JOB_DIR/$check.mjs" "$JOB_DIR/bundle" > "$o/$check.txt" 2>&1
    echo "$check rc $?: $(grep -c '^PASS' "$o/$check.txt") pass, $(grep -c '^FAIL' "$o/$check.txt") fail" >> "$s"
    grep '^FAIL' "$o/$check.txt" | head -5 >> "$s"
  done
  for run in "cuda.cudnn fp16" "cuda.cudnn bf16" "cuda.flash fp16" "cuda.flash bf16" \
    "cuda.unfused fp32" "cuda.unfused fp16" "cuda.unfused bf16"; do
    set -- $run
    f=$o/conf_$1_$2.txt
    timeout 60 $cli conformance conformance/cases --backend "$1" --dtype "$2" > "$f" 2>&1
    echo "$1 $2: $(tail -1 "$f")" >> "$s"
    grep -E '^FAIL' "$f" | head -5 | sed 's/^/    /' >> "$s"
  done
  echo "conformance done at $(at)" >> "$s"
  mkdir -p "$o/fp8"
  bash "$JOB_DIR/src/native/cudnn/tests/fp8_gpu.sh" "$JOB_DIR/src" "$JOB_DIR/bundle" "$o/fp8" 50 > "$o/fp8/steps.txt" 2>&1
  echo "fp8 at $(at): $(tr '\n' ';' < "$o/fp8/steps.txt")" >> "$s"
  grep -hE '^(PASS|FAIL)|  (PASS|FAIL) ' "$o/fp8/fp8_check.txt" "$o/fp8/node_check.txt" 2>/dev/null | cut -c1-160 >> "$s"
  cat "$s" "$o/te_bench.md"
  ;;
esac
