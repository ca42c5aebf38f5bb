#!/usr/bin/env bash
# The CUDA runtime path on the GPU machine in one call. Here first:
#   bash scripts/gpu/bundle.sh .gpu-rt && git archive HEAD native packages/native/CMakeLists.txt \
#     packages/native/src/addon > .gpu-rt/src.tar
# then there (carry [".gpu", ".gpu-rt"]): bash scripts/gpu/cuda_runtime_check.sh [all|check]
# (check: the build and the error checks only)
# Builds the addon with CUDA from the committed sources in .gpu-rt/src.tar (not from the working tree,
# where others' uncommitted kernel edits may be mid-way), for sm_90a only (H100/H200; halves the build),
# runs scripts/gpu/cuda_runtime_check.mjs (each GPU-path error, then a correct call) and
# device_memory_check.mjs (what V8 is told of device memory: no GC per iteration, finalizers), PyTorch's SDPA
# anchor and `te bench --backend cuda.flash` on the seed configs in the same call, and node conformance
# of cuda.flash fp16/bf16 and cuda.unfused fp32. Logs: $OUT/rt.tar.gz; summary printed last.
set -uo pipefail
out=${OUT:-gpu-out}
work=/tmp/rt
src=/tmp/rt-src
rm -rf "$work" "$src" && mkdir -p "$work" "$src" "$out"
source .gpu/env.sh > "$work/env.txt" 2>&1
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  nvcc --version | tail -2
  python3 -c 'import torch; print("torch", torch.__version__, "cudnn", torch.backends.cudnn.version())'
  echo "commit $(cat .gpu-rt/commit.txt 2>/dev/null || echo unknown)"
  cat "$work/env.txt"
} > "$work/machine.txt" 2>&1
finish() {
  tar czf "$out/rt.tar.gz" -C "$work" .
  cat "$work/machine.txt" "$work/summary.txt" 2>/dev/null
}

start=$(date +%s)
tar xf .gpu-rt/src.tar -C "$src"
cmake -S "$src/packages/native" -B /tmp/rt-addon -DCMAKE_BUILD_TYPE=Release -DNODE_INCLUDE_DIR="$NODE_INCLUDE" \
  -DNODE_ADDON_API_DIR="$PWD/.gpu-rt/node-addon-api" -DTE_ADDON_OUTPUT_DIR=/tmp/rt-addon/out -DTE_NATIVE_CUDA=ON \
  -DTE_CUDA_GENCODE=-gencode=arch=compute_90a,code=sm_90a > "$work/addon_build.log" 2>&1 && timeout 330 cmake --build /tmp/rt-addon -j"$(nproc)" >> "$work/addon_build.log" 2>&1 ||
  { tail -40 "$work/addon_build.log"; finish; exit 1; }
echo "addon build (sm_90a): $(( $(date +%s) - start )) s" | tee -a "$work/machine.txt"
export TE_NATIVE_ADDON=/tmp/rt-addon/out/te_native.node
summary="$work/summary.txt"

timeout 120 node scripts/gpu/cuda_runtime_check.mjs .gpu-rt > "$work/runtime_check.txt" 2>&1
echo "runtime check rc $?" >> "$summary"
cat "$work/runtime_check.txt" >> "$summary"

timeout 60 node --expose-gc scripts/gpu/device_memory_check.mjs .gpu-rt > "$work/device_memory_check.txt" 2>&1
echo "device memory check rc $?" >> "$summary"
cat "$work/device_memory_check.txt" >> "$summary"

if [[ ${1:-all} == check ]]; then finish; exit 0; fi

PYTHONUNBUFFERED=1 timeout 120 python3 .gpu/torch_sdpa_anchor.py --json "$work/anchor.json" > "$work/anchor.log" 2>&1
timeout 180 node .gpu-rt/te-cli.mjs bench --backend cuda.flash --dtype bf16 --iters 30 --warmup 5 \
  --anchor "$work/anchor.json" --format markdown > "$work/te_bench_flash.md" 2> "$work/te_bench_flash.err"
echo "te bench rc $?" >> "$summary"
cat "$work/te_bench_flash.md" >> "$summary"

for run in "cuda.flash fp16" "cuda.flash bf16" "cuda.unfused fp32"; do
  set -- $run
  f="$work/conf_$1_$2.txt"
  timeout 100 node .gpu-rt/te-cli.mjs conformance conformance/cases --backend "$1" --dtype "$2" > "$f" 2>&1
  echo "conformance $1 $2: $(tail -1 "$f")" >> "$summary"
  grep -E "^FAIL" "$f" | head -8 | sed 's/^/    /' >> "$summary"
done
echo "total: $(( $(date +%s) - start )) s" >> "$summary"
finish
