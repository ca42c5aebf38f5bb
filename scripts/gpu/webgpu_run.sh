#!/usr/bin/env bash
# On the GPU machine (carry ".gpu" and ".gpu-webgpu", made by scripts/gpu/webgpu_bundle.sh): @te/webgpu on the
# NVIDIA Vulkan driver through Dawn. Conformance of webgpu.flash and webgpu.unfused (fp32 with gradients, fp16)
# on conformance/cases first, then the benchmark (webgpu.flash vs webgpu.unfused vs tfjs-webgpu). Every step
# has its own time limit and writes its log under $OUT as it goes; a summary is printed last.
#   BENCH_ARGS: extra arguments for bench.mjs; BENCH_S / CONF_S: time limits (seconds) per step;
#   W: the bundle (default .gpu-webgpu); CONF_RUNS: "backend dtype" pairs, comma-separated (default: flash and
#   unfused in fp32 and fp16); SKIP_ENV=1 when the caller already sourced .gpu/env.sh.
set -uo pipefail
out=${OUT:-gpu-out}
mkdir -p "$out"
[[ ${SKIP_ENV:-0} == 1 ]] || source .gpu/env.sh
w=${W:-.gpu-webgpu}
[[ -f $w/node_modules/webgpu/dist/linux-x64/dawn.node ]] || xz -dk $w/node_modules/webgpu/dist/linux-x64/dawn.node.xz
[[ -f $w/bench.mjs ]] || xz -dk $w/bench.mjs.xz
{
  echo "commit $(cat $w/commit.txt)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  node --version
} > "$out/machine.txt" 2>&1
node $w/te-cli.mjs info > "$out/te-info.txt" 2>&1
grep -i "webgpu" "$out/te-info.txt" | head -5
[[ -f $w/adapter-probe.mjs ]] && timeout "${PROBE_S:-10}" node $w/adapter-probe.mjs > "$out/adapter-probe.json" 2>&1
IFS=, read -ra runs <<< "${CONF_RUNS:-webgpu.flash fp32,webgpu.unfused fp32,webgpu.flash fp16,webgpu.unfused fp16}"
for run in "${runs[@]}"; do
  set -- $run
  timeout "${CONF_S:-60}" node $w/te-cli.mjs conformance conformance/cases --backend "$1" --dtype "$2" > "$out/conf_$1_$2.txt" 2>&1
  echo "== conformance $1 $2 rc=$? $(grep -c '^PASS' "$out/conf_$1_$2.txt") PASS; $(grep -v '^PASS' "$out/conf_$1_$2.txt" | tail -3 | tr '\n' ' ')"
done
timeout "${BENCH_S:-300}" node $w/bench.mjs --out "$out/webgpu-bench.json" ${BENCH_ARGS:-} > "$out/bench.log" 2>&1
echo "bench rc=$?"
cat "$out/machine.txt"
grep -v '^{' "$out/bench.log" | tail -45
