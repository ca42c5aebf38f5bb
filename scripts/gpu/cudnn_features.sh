#!/usr/bin/env bash
# On the GPU machine: the cuda.cudnn sub-backend 1 feature checks as run through the job queue
# (.gpu-jobs/cudnn, results in benchmarks/results/cudnn-h200-features.md), in one go:
#   1. the ABI check and the standalone driver against float64 on the feature configs (post_scale_bias
#      of every shape with dBias, ALiBi, sink softmax, windows, thd, dropout through cuDNN's Philox,
#      probes of what cuDNN computes beyond TE's table);
#   2. node conformance of the bias/ALiBi/thd/softmax/window cases (fp16 and bf16) through a te CLI bundle
#      of the current sources, on the CUDA addon built from them;
#   3. test_2 (causal + post_scale_bias, with and without dBias) timed next to PyTorch's cuDNN SDPA.
# Usage: here `bash scripts/gpu/bundle.sh .gpu-cudnn` (the CLI bundle needs this machine's node_modules),
# then on the GPU machine (carry .gpu and .gpu-cudnn) `bash scripts/gpu/cudnn_features.sh`; logs under
# $OUT. It takes a few minutes: plans are built per config, about a second each.
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
source .gpu/env.sh > /dev/null
export CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
make -C native/cudnn/tests build/abi_check > "$out/abi_build.log" 2>&1 && native/cudnn/tests/build/abi_check ||
  { echo "ABI CHECK FAILED"; grep -m 20 -E "error|static assertion" "$out/abi_build.log"; }
make -C native/cudnn/tests -j16 build/cudnn_test > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
CUDNN_TEST_ONLY=bias,alibi,softmax,window,thd,dropout,probe native/cudnn/tests/build/cudnn_test --check \
  2>&1 | tee "$out/cudnn_features.txt"
status=${PIPESTATUS[0]}
[[ -f .gpu-cudnn/te-cli.mjs ]] || { echo "no .gpu-cudnn/te-cli.mjs: run scripts/gpu/bundle.sh .gpu-cudnn here first"; exit 1; }
bash scripts/gpu/job_build_addon.sh . /tmp/te-addon > "$out/addon_build.log" 2>&1 || { tail -30 "$out/addon_build.log"; exit 1; }
export TE_NATIVE_ADDON=/tmp/te-addon/out/te_native.node
cases=$(mktemp -d)
for c in bias_post_ alibi_ thd_ softmax_ swa_; do for d in conformance/cases/$c*; do ln -sfn "$PWD/$d" "$cases/"; done; done
for dtype in fp16 bf16; do
  node .gpu-cudnn/te-cli.mjs conformance "$cases" --backend cuda.cudnn --dtype "$dtype" > "$out/conf_features_$dtype.txt" 2>&1
  tail -1 "$out/conf_features_$dtype.txt"
done
CUDNN_TEST_ONLY=test_2 native/cudnn/tests/build/cudnn_test --time "$out/timing.csv" | tee "$out/timing.txt"
echo '[{"name":"test_2","b":2,"h":16,"hg":16,"d":128,"sq":2048,"skv":2048,"mask":"causal","bias":"post_scale_bias"}]' \
  > "$cases/test_2.json"
python3 .gpu/torch_sdpa_anchor.py --configs "$cases/test_2.json" --backends cudnn --json "$out/anchor.json" |
  tee "$out/anchor.txt"
exit "$status"
