# GPU job (scripts/gpu/run_jobs.sh): can webgpu.flash use the tensor cores through Dawn? JOB_DIR holds bundle/
# (scripts/gpu/webgpu_bundle.sh; any file may come xz-compressed) and copies of the probes of
# scripts/gpu/webgpu-tuning/. Steps, each with its own time limit:
#   1. subgroup-matrix-probe.mjs (when present): Dawn toggle sets -> shader-f16 / subgroup-matrix feature / matrix configs,
#      64^3 f16 GEMM correctness per config, 4096^3 GEMM TFLOP/s (subgroup matrices vs plain f32 WGSL);
#   1b. subgroup-matrix-layout.mjs (when present): exact checks of each subgroup-matrix operation the attention uses;
#   2. subgroup-matrix-attention.mjs (when present): a standalone forward attention on subgroup matrices,
#      b2 h16 s2048 d64/d128, checked against a CPU reference on sampled rows, timed;
#   3. the same-call reference: webgpu.flash (defaults) and tfjs-webgpu forward at s2048 d64/d128.
# summary.txt collects the key lines; the JSON files hold everything (errors, WGSL compile messages).
set -u
b=$JOB_DIR/bundle; o=$JOB_OUT; s=$o/summary.txt; : > $s
t0=$(date +%s); el() { echo "$(( $(date +%s) - t0 ))s"; }
find $b -name '*.xz' | while read -r f; do [[ -f ${f%.xz} ]] || xz -dk "$f"; done
echo "commit $(cat $b/commit.txt); $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -1) [$(el)]" >> $s
# The probes import `webgpu`: copied next to the bundle's node_modules so that it resolves.
cp $JOB_DIR/*.mjs $b/
if [[ -f $b/subgroup-matrix-probe.mjs ]]; then
  echo "== subgroup-matrix probe" >> $s
  timeout 60 node $b/subgroup-matrix-probe.mjs $o/probe.json > $o/probe.txt 2> $o/probe.err
  echo "probe rc $? [$(el)]" >> $s
  cat $o/probe.txt >> $s
  tail -3 $o/probe.err | grep -v '^\[probe\]' >> $s
fi
if [[ -f $b/subgroup-matrix-layout.mjs ]]; then
  echo "== subgroup-matrix layout checks" >> $s
  timeout 40 node $b/subgroup-matrix-layout.mjs $o/layout.json > $o/layout.txt 2> $o/layout.err
  echo "layout rc $? [$(el)]" >> $s
  cat $o/layout.txt >> $s
  tail -3 $o/layout.err >> $s
fi
if [[ -f $b/subgroup-matrix-attention.mjs ]]; then
  echo "== subgroup-matrix attention" >> $s
  timeout 70 node $b/subgroup-matrix-attention.mjs $o/attention.json > $o/attention.txt 2> $o/attention.err
  echo "attention rc $? [$(el)]" >> $s
  cat $o/attention.txt >> $s
  tail -3 $o/attention.err | grep -v '^\[attn\]' >> $s
fi
echo "== reference: webgpu.flash defaults and tfjs-webgpu, fwd s2048" >> $s
timeout 35 node $b/bench.mjs --dtypes fp32 --reps 3 --warmup 1 --dims 64,128 --masks no_mask --seqs 2048 --passes fwd \
  --backends flash,tfjs --out $o/ref.json > $o/ref.log 2> $o/ref.err
echo "ref rc $? [$(el)]" >> $s
grep '^| fp32' $o/ref.log >> $s
echo "done [$(el)]" >> $s
cat $s
