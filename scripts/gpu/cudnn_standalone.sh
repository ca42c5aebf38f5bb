#!/usr/bin/env bash
# On the GPU machine: checks native/cudnn/cudnn_abi.h against cuDNN's headers, builds the standalone
# cuda.cudnn driver (native/cudnn/tests, no Node), checks it against the float64 reference and times
# the seed configs, then times PyTorch's cuDNN SDPA on the same configs and prints our ratio.
# Usage: bash scripts/gpu/cudnn_standalone.sh [--check]   (logs under $OUT)
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
source .gpu/env.sh > /dev/null
export CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
make -C native/cudnn/tests build/abi_check > "$out/abi_check.log" 2>&1 && native/cudnn/tests/build/abi_check ||
  { echo "ABI CHECK FAILED"; grep -m 20 -E "error|static assertion" "$out/abi_check.log"; }
make -C native/cudnn/tests -j16 build/cudnn_test > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
native/cudnn/tests/build/cudnn_test "${1:-all}" "$out/cudnn_timing.csv" 2>&1 | tee "$out/cudnn_test.txt"
status=${PIPESTATUS[0]}
{ [[ "${1:-}" == "--check" ]] || [[ $status -ne 0 ]]; } && exit "$status"
python3 .gpu/torch_sdpa_anchor.py --backends cudnn,flash --json "$out/anchor.json" > "$out/anchor.txt" 2>&1
python3 - "$out" <<'PY'
import csv, json, sys
out = sys.argv[1]
anchor = json.load(open(f"{out}/anchor.json"))
print(f"device {anchor['device']}, torch {anchor['torch']}, torch cuDNN {anchor['cudnn']}, bf16")
print(f"{'config':16} {'ours fwd':>9} {'torch cudnn fwd':>15} {'ratio':>6} {'ours f+b':>9} {'torch cudnn f+b':>15} {'ratio':>6}")
for row in csv.DictReader(open(f"{out}/cudnn_timing.csv")):
    ref = anchor["results"].get(row["name"], {}).get("cudnn")
    if not isinstance(ref, dict):
        print(row["name"], "anchor:", ref); continue
    f, fb = float(row["fwd_ms"]), float(row["fwd_bwd_ms"])
    print(f"{row['name']:16} {f:9.4f} {ref['fwd_ms']:15.4f} {f / ref['fwd_ms']:6.3f} {fb:9.4f} {ref['fwd_bwd_ms']:15.4f} {fb / ref['fwd_bwd_ms']:6.3f}")
PY
exit "$status"
