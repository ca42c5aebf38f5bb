/**
 * webgpu.flash vs webgpu.unfused, forward and forward+backward, on seq 512..4096 (b=1, h=8, d=64; no mask and
 * causal; fp32 and fp16). Prints one JSON line per measurement and a table; writes all of it to the file named
 * by --out. Run through build.mjs's bundle on the GPU machine (see README.md).
 */
import { writeFileSync } from "node:fs";
import { type AttentionParams, generateValues, hostTensor, makeParams } from "@te/core";
import { getDevice, upload, webgpuFlash, webgpuUnfused, type WebGpuTensor } from "@te/webgpu";

interface Measurement {
  backend: string;
  dtype: string;
  mask: string;
  seq: number;
  pass: "fwd" | "fwd+bwd";
  ms: number;
  tflops: number;
  skipped?: string;
}

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : fallback;
};
const SEQS = option("seqs", "512,1024,2048,4096").split(",").map(Number);
const REPS = Number(option("reps", "5"));
const OUT = option("out", "");
const B = 1;
const H = 8;
const D = 64;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main() {
  const device = await getDevice();
  const info = (device as unknown as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  console.error(`device: ${info?.vendor ?? "?"} ${info?.architecture ?? ""} ${info?.description ?? ""}`);
  const results: Measurement[] = [];
  for (const dtype of ["fp32", "fp16"] as const) {
    for (const mask of ["no_mask", "causal"] as const) {
      for (const seq of SEQS) {
        const p: AttentionParams = makeParams({ b: B, h: H, d: D, sq: seq, maskType: mask, dtype, device: "webgpu", isTraining: true });
        const n = B * seq * H * D;
        const tensor = async (stream: number) =>
          (await upload(hostTensor("fp32", [B, seq, H, D], Float32Array.from(generateValues(7, stream, n, 1))), device, dtype)) as WebGpuTensor;
        const [q, k, v, dO] = [await tensor(0), await tensor(1), await tensor(2), await tensor(3)];
        // Matmul FLOPs: 4 b h s^2 d forward (QK^T, PV), 2.5x that with backward; halved for causal.
        const fwdFlops = (4 * B * H * seq * seq * D) / (mask === "causal" ? 2 : 1);
        for (const backend of [webgpuFlash, webgpuUnfused]) {
          const verdict = backend.explain(p, { cudaArch: null, env: {} });
          if (!verdict.ok) {
            const why = verdict.reasons.map((r) => r.message).join("; ");
            for (const pass of ["fwd", "fwd+bwd"] as const) results.push({ backend: backend.id, dtype, mask, seq, pass, ms: Number.NaN, tflops: 0, skipped: why });
            continue;
          }
          for (const pass of ["fwd", "fwd+bwd"] as const) {
            const times: number[] = [];
            for (let rep = 0; rep <= REPS; rep++) {
              const started = performance.now();
              const fwd = await backend.forward({ q, k, v }, p);
              if (pass === "fwd") {
                await device.queue.onSubmittedWorkDone();
                fwd.saved.release();
              } else {
                const g = await backend.backward(fwd.saved, dO, p);
                await device.queue.onSubmittedWorkDone();
                for (const t of [g.dq, g.dk, g.dv]) t.buffer.destroy();
              }
              const ms = performance.now() - started;
              fwd.o.buffer.destroy();
              fwd.lse.buffer.destroy();
              if (rep > 0) times.push(ms); // rep 0 compiles the pipelines
            }
            const ms = median(times);
            const flops = pass === "fwd" ? fwdFlops : 3.5 * fwdFlops;
            const m: Measurement = { backend: backend.id, dtype, mask, seq, pass, ms, tflops: flops / (ms * 1e9) };
            results.push(m);
            console.log(JSON.stringify(m));
          }
        }
        for (const t of [q, k, v, dO]) t.buffer.destroy();
      }
    }
  }
  console.log("\nbackend         dtype mask     seq   pass     ms        TFLOP/s");
  for (const r of results) {
    const ms = r.skipped ? `skipped: ${r.skipped}` : `${r.ms.toFixed(2).padStart(9)} ${r.tflops.toFixed(3).padStart(8)}`;
    console.log(`${r.backend.padEnd(15)} ${r.dtype.padEnd(5)} ${r.mask.padEnd(8)} ${String(r.seq).padStart(5)} ${r.pass.padEnd(8)} ${ms}`);
  }
  if (OUT) writeFileSync(OUT, JSON.stringify({ device: info ? { vendor: info.vendor, architecture: info.architecture, description: info.description } : null, results }, null, 2));
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
