#!/usr/bin/env bash
# On the GPU machine, from the repo root: builds the standalone cuda.flash driver with nvcc, runs its
# correctness cases, then times the seed configs next to PyTorch SDPA (same call, same GPU).
#   bash scripts/gpu/flash_standalone.sh [ARCH flags]   results under $OUT (or ./gpu-out)
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
arch=${1:--gencode arch=compute_80,code=sm_80 -gencode arch=compute_90a,code=sm_90a}
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nvcc --version | tail -2; git rev-parse HEAD 2>/dev/null; echo "$arch"; } > "$out/machine.txt"
start=$(date +%s)
make -C native/cuda/tests -j"$(nproc)" ARCH="$arch" build/flash_test > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
native/cuda/tests/build/flash_test check --json "$out/check.jsonl" | tee "$out/check.txt"
native/cuda/tests/build/flash_test bench --json "$out/bench.jsonl" | tee "$out/bench.txt"
if [[ -f .gpu/torch_sdpa_anchor.py ]]; then
  PYTHONUNBUFFERED=1 python3 .gpu/torch_sdpa_anchor.py --json "$out/anchor.json" 2>&1 | tail -30
fi
# Tuning experiment: the d = 128 forward with 64-key blocks (TE_FLASH_FWD_KEYS_D128), checked and timed.
if [[ -n "${FLASH_EXPERIMENT_KEYS64:-}" ]]; then
  rm -f native/cuda/tests/build/flash_*_d128_* native/cuda/tests/build/flash_*_d96_* native/cuda/tests/build/flash_test
  make -C native/cuda/tests -j"$(nproc)" ARCH="$arch -DTE_FLASH_FWD_KEYS_D128=64" build/flash_test > "$out/build_keys64.log" 2>&1 || { tail -20 "$out/build_keys64.log"; exit 1; }
  native/cuda/tests/build/flash_test check > "$out/check_keys64.txt"; tail -1 "$out/check_keys64.txt"
  for c in test_1 long_4k_full long_4k_causal; do native/cuda/tests/build/flash_test bench "$c"; done | sed 's/^BENCH/KEYS64/' | tee "$out/bench_keys64.txt"
fi
