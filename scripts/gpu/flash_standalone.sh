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
