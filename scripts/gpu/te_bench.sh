#!/usr/bin/env bash
# On the GPU machine after node_conformance.sh built the addon (same call, or rebuilds it): PyTorch's
# SDPA anchor, `te bench` of cuda.cudnn and cuda.flash on the seed configs (cuda.unfused on test_0: its
# fp32 score buffers refuse the long configs), bf16, with the anchor's ratios, and the per-phase host
# profile of test_0/test_1 (host_path_profile.mjs: where the host time of a call goes).
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
source .gpu/env.sh > /dev/null
export TE_NATIVE_ADDON=/tmp/te-addon/out/te_native.node
[[ -f $TE_NATIVE_ADDON ]] || { bash scripts/gpu/node_conformance.sh > /dev/null 2>&1; }
PYTHONUNBUFFERED=1 python3 .gpu/torch_sdpa_anchor.py --json "$out/anchor.json" > "$out/anchor.log" 2>&1
node .gpu/te-cli.mjs bench --backend cuda.cudnn,cuda.flash --iters 30 --warmup 5 --anchor "$out/anchor.json" \
  --format markdown > "$out/te_bench.md" 2> "$out/te_bench.err"
node .gpu/te-cli.mjs bench --backend cuda.cudnn,cuda.flash,cuda.unfused --config test_0 --iters 10 \
  --anchor "$out/anchor.json" > "$out/te_bench_test0.md" 2> "$out/te_bench_test0.err"
node scripts/gpu/host_path_profile.mjs .gpu test_0,test_1 cuda.cudnn,cuda.flash > "$out/host_profile.txt" 2>&1
cat "$out/te_bench.md" "$out/te_bench_test0.md"; grep '^|' "$out/host_profile.txt"; tail -3 "$out/te_bench.err"
