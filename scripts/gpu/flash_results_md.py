#!/usr/bin/env python3
"""Turns the files flash_standalone.sh leaves in a folder (machine.txt, check.txt, bench.jsonl,
anchor.json) into the markdown table of benchmarks/results/. Usage: flash_results_md.py DIR COMMIT"""
import json, pathlib, sys

d, commit = pathlib.Path(sys.argv[1]), sys.argv[2]
machine = (d / "machine.txt").read_text().splitlines()
anchor = json.loads((d / "anchor.json").read_text()).get("results", {})
print("# cuda.flash, standalone driver, on the GPU machine\n")
print(f"Commit {commit}. GPU: {machine[0]}. {' '.join(machine[1:3])}")
arch = machine[4] if len(machine) > 4 else "-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90a,code=sm_90a"
print(f"Built with nvcc ({arch}) by scripts/gpu/flash_standalone.sh (native/cuda/tests/flash_test);")
print("PyTorch SDPA (torch_sdpa_anchor.py) timed in the same call on the same GPU. bf16, no dropout.\n")
print("## Correctness (float64 CPU reference, fresh random inputs, poisoned outputs)\n\n```")
print((d / "check.txt").read_text().rstrip())
print("```\n\n## Speed (median of cudaEvent timings; fwd+bwd = one forward + one backward)\n")
print("| config | ours fwd ms | ours fwd TFLOP/s | ours fwd+bwd ms | ours deterministic fwd+bwd ms | torch flash fwd ms "
      "| torch flash fwd+bwd ms | torch cuDNN fwd+bwd ms | flash time / ours, fwd+bwd (>1 = we are faster) |")
print("|---|---|---|---|---|---|---|---|---|")
for line in (d / "bench.jsonl").read_text().splitlines():
    r = json.loads(line)
    a = anchor.get(r["name"], {})
    fl = a.get("flash") if isinstance(a.get("flash"), dict) else None
    cu = a.get("cudnn") if isinstance(a.get("cudnn"), dict) else None
    ratio = f"{fl['fwd_bwd_ms'] / r['fwd_bwd_ms']:.2f}" if fl else "flash unsupported"
    det = r.get("fwd_bwd_deterministic_ms", "-")
    print(f"| {r['name']} | {r['fwd_ms']} | {r['fwd_tflops']} | {r['fwd_bwd_ms']} | {det} | {fl['fwd_ms'] if fl else '-'} "
          f"| {fl['fwd_bwd_ms'] if fl else '-'} | {cu['fwd_bwd_ms'] if cu else '-'} | {ratio} |")
