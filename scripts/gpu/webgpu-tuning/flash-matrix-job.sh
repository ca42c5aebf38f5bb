# GPU job (scripts/gpu/run_jobs.sh): webgpu.flash's forward on subgroup matrices (packages/webgpu/src/flash/
# matrix-*.ts) on the H200 through Dawn, with the toggles under which the adapter lists them. JOB_DIR holds
# bundle/ (scripts/gpu/webgpu_bundle.sh) and matrix-check.mjs. Steps, each with its own time limit:
#   1. what the device offers (features, subgroup sizes, matrix configurations);
#   2. fp16 conformance of webgpu.flash, gradients included, forward and backward on the matrices; again with
#      TE_WEBGPU_FLASH_MATRIX_BACKWARD=0 where the first had failures, to tell the passes apart;
#   3. fwd+bwd s1024-4096 against tfjs-webgpu; 4. a sweep of the backward's matrix tiles at s2048;
#   5. the forward table fp16/fp32, flash vs unfused vs tfjs-webgpu, s512-4096, no mask and causal;
#   6. a sweep of the forward's matrix tiles at s2048; 7. the same tiles at s2048, each as the only tile of its own
#   bench process (TE_WEBGPU_FLASH_TILES for the whole run: variants timed after another tile in one process have
#   shown times several times their own); 8. host-overhead.mjs under --cpu-prof (where a call's host time goes),
#   where the job has it; 9. fp32 conformance (the register-tiled kernels). Step isolated_bwd is 7 for fwd+bwd with
#   the backward's variants.
# JOB_DIR/conf-extra, if there: more fp16 conformance runs after step 2, one per line "NAME VAR=VALUE ..." (values
# without spaces, such as TE_WEBGPU_FLASH_TILES={"matrix":{"bkv":16,"sgw":8,"onePass":true}}).
# JOB_DIR/steps, if there, names the steps of 3-9 to run (fwdbwd bwdsweep fwd sweep isolated isolated_bwd host fp32); 1 and 2
# always run.
# JOB_DIR/bench-args, if there, goes before every bench's own arguments (bench.ts takes an option's first
# occurrence, so these win: such as --reps 30 --warmup 10).
set -u
b=$JOB_DIR/bundle; o=$JOB_OUT; s=$o/summary.txt; : > $s
t0=$(date +%s); el() { echo "$(( $(date +%s) - t0 ))s"; }
find $b -name '*.xz' | while read -r f; do [[ -f ${f%.xz} ]] || xz -dk "$f"; done
echo "commit $(cat $b/commit.txt); $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -1) [$(el)]" >> $s
export TE_WEBGPU_DAWN_FLAGS="enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia"
cp $JOB_DIR/matrix-check.mjs $b/
[[ -f $JOB_DIR/host-overhead.mjs ]] && cp $JOB_DIR/host-overhead.mjs $b/
timeout 30 node $b/matrix-check.mjs > $o/check.txt 2>&1
echo "device rc $?: $(head -c 600 $o/check.txt) [$(el)]" >> $s
conf() { # name, dtype, seconds, then env assignments
  local name=$1 dtype=$2 limit=$3; shift 3
  env "$@" timeout $limit node $b/te-cli.mjs conformance conformance/cases --backend webgpu.flash --dtype $dtype > $o/conf_$name.txt 2>&1
  echo "conformance webgpu.flash $dtype $name rc $?: $(grep -c '^PASS' $o/conf_$name.txt) PASS, $(grep -c '^FAIL' $o/conf_$name.txt) FAIL; $(tail -1 $o/conf_$name.txt) [$(el)]" >> $s
  grep '^FAIL' $o/conf_$name.txt | head -8 >> $s
}
conf matrix fp16 150
grep -q '^FAIL' $o/conf_matrix.txt && conf nobwd fp16 90 TE_WEBGPU_FLASH_MATRIX_BACKWARD=0
if [[ -f $JOB_DIR/conf-extra ]]; then
  while read -r -u 3 name assigns; do [[ -n $name ]] && conf "$name" fp16 90 $assigns; done 3< $JOB_DIR/conf-extra
fi
wanted() { [[ ! -f $JOB_DIR/steps ]] || grep -qw "$1" $JOB_DIR/steps; }
bench() { # name, seconds, then bench args
  local name=$1 limit=$2; shift 2
  wanted $name || return 0
  timeout $limit node $b/bench.mjs --out $o/$name.json $(cat $JOB_DIR/bench-args 2>/dev/null) "$@" > $o/$name.log 2> $o/$name.err
  echo "== $name rc $? [$(el)]" >> $s
  grep '^|' $o/$name.log >> $s
}
bench fwdbwd 200 --dtypes fp16,fp32 --reps 3 --warmup 1 --dims 64,128 --seqs 1024,2048,4096 --masks no_mask,causal --passes fwd+bwd --backends flash,tfjs
bench bwdsweep 120 --dtypes fp16 --reps 3 --warmup 1 --dims 64,128 --seqs 2048 --masks no_mask --passes fwd+bwd --backends flash --tile-variants "$(cat $JOB_DIR/backward-variants.json)"
bench fwd 200 --dtypes fp16,fp32 --reps 5 --warmup 2 --dims 64,128 --seqs 512,1024,2048,4096 --masks no_mask,causal --passes fwd --backends flash,unfused,tfjs
bench sweep 200 --dtypes fp16 --reps 5 --warmup 2 --dims 64,128 --seqs 2048 --masks no_mask,causal --passes fwd --backends flash --tile-variants "$(cat $JOB_DIR/variants.json)"
isolated() { # step, variants file, pass: the table's tiles, then each variant, each in its own bench process
  wanted $1 || return 0
  echo "table -" > $o/$1.txt
  node -e 'for (const v of JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))) console.log(v.name, JSON.stringify(v.tiles))' $2 >> $o/$1.txt
  while read -r -u 3 name tiles; do
    if [[ $tiles == - ]]; then unset TE_WEBGPU_FLASH_TILES; else export TE_WEBGPU_FLASH_TILES=$tiles; fi
    timeout 90 node $b/bench.mjs --out $o/$1_$name.json $(cat $JOB_DIR/bench-args 2>/dev/null) --dtypes fp16 --reps 5 --warmup 2 --dims 64,128 --seqs 2048 --masks no_mask,causal --passes $3 --backends flash > $o/$1_$name.log 2> $o/$1_$name.err
    echo "== $1 $name rc $? [$(el)]" >> $s
    grep '^| fp16' $o/$1_$name.log >> $s
  done 3< $o/$1.txt
  unset TE_WEBGPU_FLASH_TILES
}
isolated isolated $JOB_DIR/variants.json fwd
isolated isolated_bwd $JOB_DIR/backward-variants.json fwd+bwd
if wanted host; then
  timeout 90 node --cpu-prof --cpu-prof-dir=$o/prof $b/host-overhead.mjs > $o/host.txt 2>&1
  echo "== host rc $? [$(el)]" >> $s; cat $o/host.txt >> $s
fi
wanted fp32 && conf fp32 fp32 60
echo "done [$(el)]" >> $s
cat $s
