#!/usr/bin/env bash
# On the GPU machine (.gpu/env.sh sourced), the GPU part of an FP8 round within a time budget:
#   1. FP8 vs BF16 cuDNN timings (fp8_test --time: long_4k_full = b8 h16 s4096 d128, test_3,
#      long_4k_causal, test_1, test_0; forward, forward with the fp8_dpa edge casts, forward+backward),
#   2. the end-to-end node check (fp8_node_check.mjs: DotProductAttention + DelayedScaling on
#      cuda.cudnn sub-backend 2, against F16 and the float64 emulation; the device recipe kernels
#      against core's host recipe),
#   3. standalone checks against float64 (fp8_test --check) and `te bench --fp8-only` with what is left.
# Built beforehand (a job's build.sh): SRC/native/cudnn/tests/build/fp8/fp8_test, the addon at
# $TE_NATIVE_ADDON, the CLI bundle at BUNDLE.
#   bash fp8_gpu.sh SRC BUNDLE OUT BUDGET_SECONDS
set -uo pipefail
src=${1:?SRC} bundle=${2:?BUNDLE} out=${3:?OUT} budget=${4:-38}
t=$src/native/cudnn/tests
start=$(date +%s)
left() { echo $(( budget - ($(date +%s) - start) )); }
step() {  # step NAME SECONDS COMMAND...: runs COMMAND with at most SECONDS (or what is left)
  local name=$1 secs=$2
  shift 2
  (( secs > $(left) )) && secs=$(left)
  if (( secs < 3 )); then echo "$name: skipped (no time left)"; return; fi
  local s=$(date +%s)
  timeout "$secs" "$@" > "$out/$name.txt" 2>&1
  echo "$name rc $? in $(( $(date +%s) - s )) s"
}
FP8_TEST_ONLY=long_4k_full,test_3,long_4k_causal,test_1,test_0 \
  step fp8_timing 15 stdbuf -oL "$t/build/fp8/fp8_test" --time "$out/fp8_timing.csv"
step node_check 20 node "$t/fp8_node_check.mjs" "$bundle"
FP8_TEST_ONLY=cast_check,fp8_hybrid_causal,fp8_hybrid_gqa,fp8_e4m3_causal,fp8_hybrid_pad_causal,fp8_fwd_d64 \
  step fp8_check 9 stdbuf -oL "$t/build/fp8/fp8_test" --check
step te_bench_fp8 8 node "$bundle/te-cli.mjs" bench --backend cuda.cudnn --fp8-only --config test_1,test_0 \
  --iters 10 --warmup 3
