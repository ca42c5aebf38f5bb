#!/usr/bin/env bash
# On the GPU machine, after flash_standalone.sh built the driver: Nsight Compute summaries of one
# forward and one backward launch of cuda.flash on a seed config (default test_1).
set -uo pipefail
out=${OUT:-gpu-out}
cfg=${1:-test_1}
for k in flash_fwd_kernel flash_bwd_kernel; do
  ncu --kernel-name "regex:$k" -c 1 --section SpeedOfLight --section WarpStateStats --section Occupancy \
    native/cuda/tests/build/flash_test bench "$cfg" > "$out/ncu_$k.txt" 2>&1
  grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|Achieved Occupancy|Theoretical Occupancy|Stall|Warp Cycles|Registers|Block Limit" "$out/ncu_$k.txt" | head -40
done
