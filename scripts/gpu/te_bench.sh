#!/usr/bin/env bash
# On the GPU machine after node_conformance.sh built the addon (same call, or rebuilds it): PyTorch's
# SDPA anchor and `te bench` for cuda.flash (all seed configs) and cuda.unfused (test_0; its fp32
# score buffers refuse the long configs), bf16, with the anchor's ratios.
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
source .gpu/env.sh > /dev/null
export TE_NATIVE_ADDON=/tmp/te-addon/out/te_native.node
[[ -f $TE_NATIVE_ADDON ]] || { bash scripts/gpu/node_conformance.sh > /dev/null 2>&1; }
PYTHONUNBUFFERED=1 python3 .gpu/torch_sdpa_anchor.py --json "$out/anchor.json" > "$out/anchor.log" 2>&1
node .gpu/te-cli.mjs bench --backend cuda.flash --iters 20 --warmup 3 --anchor "$out/anchor.json" --format markdown \
  > "$out/te_bench_flash.md" 2> "$out/te_bench_flash.err"
node .gpu/te-cli.mjs bench --backend cuda.flash,cuda.unfused --config test_0 --iters 10 --anchor "$out/anchor.json" \
  > "$out/te_bench_test0.md" 2> "$out/te_bench_test0.err"
cat "$out/te_bench_flash.md" "$out/te_bench_test0.md"; tail -3 "$out/te_bench_flash.err"
