# GPU job (scripts/gpu/run_jobs.sh; laid out by webgpu_matrix_job.sh with JOB_SCRIPT=dawn-toggles-job.sh): the
# forward at s2048 (d64, d128; fp16 on the subgroup matrices, fp32 on the SIMT kernels) against tfjs-webgpu under
# Dawn toggle sets beyond the two the matrix path needs: disable_robustness (no index clamping in the generated
# shaders) and disable_workgroup_init (no zeroing of workgroup memory at dispatch). Unsafe toggles (Node only):
# this asks whether Dawn's code generation costs the kernels time, not what users get by default.
set -u
b=$JOB_DIR/bundle; o=$JOB_OUT; s=$o/summary.txt; : > $s
t0=$(date +%s); el() { echo "$(( $(date +%s) - t0 ))s"; }
find $b -name '*.xz' | while read -r f; do [[ -f ${f%.xz} ]] || xz -dk "$f"; done
echo "commit $(cat $b/commit.txt); $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -1) [$(el)]" >> $s
base="allow_unsafe_apis,vulkan_enable_f16_on_nvidia"
for set in base robust0 robust0-wginit0; do
  case $set in
    base) toggles=$base ;;
    robust0) toggles=$base,disable_robustness ;;
    robust0-wginit0) toggles=$base,disable_robustness,disable_workgroup_init ;;
  esac
  export TE_WEBGPU_DAWN_FLAGS="enable-dawn-features=$toggles"
  timeout 60 node $b/te-cli.mjs conformance conformance/cases --backend webgpu.flash --dtype fp16 > $o/conf_$set.txt 2>&1
  echo "== $set: conformance fp16 rc $?: $(grep -c '^PASS' $o/conf_$set.txt) PASS, $(grep -c '^FAIL' $o/conf_$set.txt) FAIL [$(el)]" >> $s
  timeout 120 node $b/bench.mjs --out $o/fwd_$set.json --dtypes fp16,fp32 --dims 64,128 --seqs 2048 --masks no_mask,causal \
    --passes fwd --backends flash,tfjs --reps 10 --warmup 3 --gpu-calls 20 > $o/fwd_$set.log 2> $o/fwd_$set.err
  echo "== $set: bench rc $? [$(el)]" >> $s
  grep '^|' $o/fwd_$set.log >> $s
done
echo "done [$(el)]" >> $s
cat $s
