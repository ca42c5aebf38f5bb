#!/usr/bin/env python3
"""Turns what a cuda.flash GPU job leaves in a folder (machine.txt, check.txt, bench.jsonl, anchor.json;
optionally check_mma.txt) into the markdown of benchmarks/results/. Usage: flash_results_md.py DIR COMMIT

bench.jsonl has one line per config from native/cuda/tests/flash_test bench: the default kernel
choice's fwd_ms / fwd_bwd_ms / fwd_tflops, fwd_bwd_deterministic_ms, and <variant>_fwd_ms /
<variant>_fwd_bwd_ms for the other kernel choices it timed (kBenchVariants)."""
import json, pathlib, sys

d, commit = pathlib.Path(sys.argv[1]), sys.argv[2]
machine = (d / "machine.txt").read_text().splitlines()
# anchor.json is written at the end of the anchor run; when it was cut short, its printed lines remain.
if (d / "anchor.json").exists():
    anchor_doc = json.loads((d / "anchor.json").read_text())
else:
    lines = [l.split(" ", 1) for l in (d / "anchor.txt").read_text().splitlines() if l.startswith(("test_", "long_"))]
    anchor_doc = {"results": {name: json.loads(rest) for name, rest in lines}}
anchor = anchor_doc.get("results", {})
print("# cuda.flash, standalone driver, on the GPU machine\n")
print(f"Commit {commit}. GPU: {machine[0]}. {' '.join(machine[1:3])}")
print(f"PyTorch {anchor_doc.get('torch', '?')}, cuDNN {anchor_doc.get('cudnn', '?')} (torch_sdpa_anchor.py, same job, same GPU).")
arch = machine[4] if len(machine) > 4 else "-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90a,code=sm_90a"
print(f"Built with nvcc ({arch}) (native/cuda/tests/flash_test). bf16, no dropout.\n")
for name, title in (("check.txt", "default kernel choice"), ("check_mma.txt", "mma.sync kernels only")):
    if (d / name).exists():
        print(f"## Correctness, {title} (float64 CPU reference, fresh random inputs, poisoned outputs)\n\n```")
        print((d / name).read_text().rstrip())
        print("```\n")
print("## Speed (median of cudaEvent timings; fwd+bwd = one forward + one backward)\n")
print("Ours: default = wgmma forward and backward where they take the call (d = dv = 128, no bias/ALiBi/dropout),")
print("mma.sync otherwise; mma64x64 = the mma.sync kernels of v3 (the previous default).\n")
print("| config | ours fwd ms (TFLOP/s) | ours fwd+bwd ms | deterministic fwd+bwd ms | mma64x64 fwd / fwd+bwd ms "
      "| torch flash fwd ms (TFLOP/s) | torch flash fwd+bwd ms | torch cuDNN fwd (TFLOP/s) / fwd+bwd ms "
      "| flash fwd+bwd / ours (>1 = we are faster) |")
print("|---|---|---|---|---|---|---|---|---|")

def bench_rows():
    """bench.jsonl, or (a run cut short before its JSON was flushed) the BENCH lines of bench.txt."""
    lines = (d / "bench.jsonl").read_text().splitlines() if (d / "bench.jsonl").exists() else []
    if lines:
        return [json.loads(l) for l in lines]
    rows = {}
    for l in (d / "bench.txt").read_text().splitlines():
        f = l.split()
        if len(f) < 12 or f[0] != "BENCH":
            continue
        r = rows.setdefault(f[1], {"name": f[1]})
        fwd, tf, fb = float(f[4]), float(f[6].strip("(")), float(f[9])
        if f[2] == "default":
            r.update(fwd_ms=fwd, fwd_tflops=tf, fwd_bwd_ms=fb)
        elif f[2] == "deterministic":
            r["fwd_bwd_deterministic_ms"] = fb
        else:
            r[f[2] + "_fwd_ms"], r[f[2] + "_fwd_bwd_ms"] = fwd, fb
    return list(rows.values())


for r in bench_rows():
    a = anchor.get(r["name"], {})
    fl = a.get("flash") if isinstance(a.get("flash"), dict) else None
    cu = a.get("cudnn") if isinstance(a.get("cudnn"), dict) else None
    ratio = f"{fl['fwd_bwd_ms'] / r['fwd_bwd_ms']:.2f}" if fl else ("flash unsupported" if a else "not timed")
    det = r.get("fwd_bwd_deterministic_ms", "-")
    old = f"{r['mma64x64_fwd_ms']} / {r['mma64x64_fwd_bwd_ms']}" if "mma64x64_fwd_ms" in r else "-"
    print(f"| {r['name']} | {r['fwd_ms']} ({r['fwd_tflops']}) | {r['fwd_bwd_ms']} | {det} | {old} "
          f"| {fl['fwd_ms'] if fl else '-'} ({fl['fwd_tflops'] if fl else '-'}) | {fl['fwd_bwd_ms'] if fl else '-'} "
          f"| {cu['fwd_ms'] if cu else '-'} ({cu['fwd_tflops'] if cu else '-'}) / {cu['fwd_bwd_ms'] if cu else '-'} | {ratio} |")
