#!/usr/bin/env bash
# On the GPU machine, from the repo root (carry ".gpu", filled by scripts/gpu/bundle.sh here): one call that
# builds the addon with every CUDA family, runs the conformance cases on each CUDA backend for the dtypes it
# claims, then PyTorch's SDPA anchor and `te bench` for all CUDA backends in the same call, so the table's
# ratios compare runs on one GPU. Everything lands in $OUT/acceptance.tar.gz (the tool returns at most 8
# files) plus the summary printed last.
#   bash scripts/gpu/acceptance.sh [conformance|bench|all]   (default all)
set -uo pipefail
what=${1:-all}
out=${OUT:-gpu-out}
work=/tmp/acceptance
rm -rf "$work" && mkdir -p "$work" "$out"
source .gpu/env.sh > "$work/env.txt" 2>&1
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  nvcc --version | tail -2
  python3 -c 'import torch; print("torch", torch.__version__, "cudnn", torch.backends.cudnn.version())'
  echo "commit $(cat .gpu/commit.txt 2>/dev/null || echo unknown)"
  cat "$work/env.txt"
} > "$work/machine.txt" 2>&1

start=$(date +%s)
cmake -S packages/native -B /tmp/te-addon -DCMAKE_BUILD_TYPE=Release -DNODE_INCLUDE_DIR="$NODE_INCLUDE" \
  -DNODE_ADDON_API_DIR="$PWD/.gpu/node-addon-api" -DTE_ADDON_OUTPUT_DIR=/tmp/te-addon/out -DTE_NATIVE_CUDA=ON \
  > "$work/addon_build.log" 2>&1 && cmake --build /tmp/te-addon -j"$(nproc)" >> "$work/addon_build.log" 2>&1 ||
  { tail -40 "$work/addon_build.log"; tar czf "$out/acceptance.tar.gz" -C "$work" .; exit 1; }
echo "addon build: $(( $(date +%s) - start )) s" | tee -a "$work/machine.txt"
export TE_NATIVE_ADDON=/tmp/te-addon/out/te_native.node
node .gpu/te-cli.mjs info > "$work/te_info.txt" 2>&1

summary="$work/summary.txt"
: > "$summary"
if [[ $what == all || $what == conformance ]]; then
  for run in "cuda.cudnn fp16" "cuda.cudnn bf16" "cuda.flash fp16" "cuda.flash bf16" \
    "cuda.unfused fp32" "cuda.unfused fp16" "cuda.unfused bf16"; do
    set -- $run
    f="$work/conf_$1_$2.txt"
    timeout 300 node .gpu/te-cli.mjs conformance conformance/cases --backend "$1" --dtype "$2" > "$f" 2>&1
    echo "$1 $2: $(tail -1 "$f")" >> "$summary"
    grep -E "^FAIL" "$f" | head -8 | sed 's/^/    /' >> "$summary"
  done
fi
if [[ $what == all || $what == bench ]]; then
  PYTHONUNBUFFERED=1 timeout 300 python3 .gpu/torch_sdpa_anchor.py --json "$work/anchor.json" > "$work/anchor.log" 2>&1
  timeout 400 node .gpu/te-cli.mjs bench --backend cuda.cudnn,cuda.flash,cuda.unfused --baseline cuda.unfused \
    --dtype bf16 --iters 30 --warmup 5 --anchor "$work/anchor.json" --format markdown > "$work/te_bench.md" 2> "$work/te_bench.err"
fi
tar czf "$out/acceptance.tar.gz" -C "$work" .
cat "$work/machine.txt" "$summary"
[[ -f $work/te_bench.md ]] && cat "$work/te_bench.md" && tail -3 "$work/te_bench.err"
exit 0
