# GPU job (scripts/gpu/run_jobs.sh) timing webgpu.flash on NVIDIA's Vulkan driver through Dawn; JOB_DIR holds
# bundle/ (scripts/gpu/webgpu_bundle.sh; any file may come xz-compressed) and this folder's scripts.
# Steps, each with its own time limit, in order of need: conformance fp32+grads of the defaults; the table
# d64/d128 s512-4096 vs webgpu.unfused and tfjs-webgpu; sweeps of tiles and opt-in switches at s2048
# (variants.mjs) and conformance of the fastest checked variants (pick.mjs); the shader-f16 probe; Dawn
# toggles (measurements only: disable_robustness is unsafe); the causal table. summary.txt collects the rows.
set -u
b=$JOB_DIR/bundle; o=$JOB_OUT; s=$o/summary.txt; : > $s
t0=$(date +%s); el() { echo "$(( $(date +%s) - t0 ))s"; }
# Every file of the bundle that came xz-compressed (dawn.node, bench.mjs, and the JS files where the job compressed them).
find $b -name '*.xz' | while read -r f; do [[ -f ${f%.xz} ]] || xz -dk "$f"; done
echo "commit $(cat $b/commit.txt); $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)" >> $s
conf() { # name, dtype, then env assignments
  local name=$1 dtype=$2; shift 2
  env "$@" timeout 30 node $b/te-cli.mjs conformance conformance/cases --backend webgpu.flash --dtype $dtype > $o/conf_$name.txt 2>&1
  echo "conformance webgpu.flash $dtype+grads $name rc $?: $(grep -c '^PASS' $o/conf_$name.txt) PASS, $(grep -c '^FAIL' $o/conf_$name.txt) FAIL; $(tail -1 $o/conf_$name.txt) [$(el)]" >> $s
  grep '^FAIL' $o/conf_$name.txt | head -3 >> $s
}
bench() { # name, seconds, then bench args
  local name=$1 limit=$2; shift 2
  timeout $limit node $b/bench.mjs --dtypes fp32 --reps 3 --warmup 1 --out $o/$name.json "$@" > $o/$name.log 2> $o/$name.err
  echo "== $name rc $? [$(el)]" >> $s
}
conf default fp32
bench table 40 --dims 64,128 --masks no_mask --backends flash,unfused,tfjs
grep '^|' $o/table.log >> $s
for sw in fwd64 fwd128 bwd64 bwd128; do
  passes=fwd; [[ $sw == bwd* ]] && passes=fwd+bwd
  bench sweep_$sw 25 --dims ${sw#???} --masks no_mask --seqs 2048 --backends flash --passes $passes --tile-variants "$(node $JOB_DIR/variants.mjs $sw)"
  node $JOB_DIR/summarize.mjs $o/sweep_$sw.log >> $s 2>&1
  grep '^check' $o/sweep_$sw.err | sed 's/^check //; s/"mask":"no_mask","seq":2048,//' | tr '\n' ' ' >> $s; echo >> $s
done
for group in "fwd64 bwd64" "fwd128 bwd128"; do
  mapfile -t picked < <(node $JOB_DIR/pick.mjs $o $group 2>> $s)
  echo "picked for ${group}: ${picked[*]}" >> $s
  [[ -n ${picked[0]:-} ]] && conf "pick_${group// /_}" fp32 "${picked[@]}"
done
cp $JOB_DIR/f16-probe.mjs $b/ && timeout 15 node $b/f16-probe.mjs > $o/f16-probe.json 2>&1
echo "f16 probe rc $?: $(tr -d '\n ' < $o/f16-probe.json | grep -o '"toggles":\[[^]]*\]\|"shader-f16"\|"run":{[^}]*}\|"error":"[^"]*"' | tr '\n' ' ') [$(el)]" >> $s
for fl in enable-dawn-features=disable_workgroup_init enable-dawn-features=disable_robustness; do
  TE_WEBGPU_DAWN_FLAGS=$fl bench dawn_${fl#*=} 15 --dims 64,128 --masks no_mask --seqs 2048 --backends flash
  node $JOB_DIR/summarize.mjs $o/dawn_${fl#*=}.log | sed "s/^/${fl#*=} /" >> $s 2>&1
  grep -o 'features: .*' $o/dawn_${fl#*=}.err | head -1 >> $s
done
bench table_causal 35 --dims 64,128 --masks causal --backends flash,tfjs
grep '^| fp32' $o/table_causal.log >> $s
echo "done [$(el)]" >> $s
