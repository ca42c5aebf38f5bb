/**
 * webgpu.flash vs webgpu.unfused vs tfjs's WebGPU backend (@tensorflow/tfjs-backend-webgpu running the same
 * attention as tfjs ops: matMul, scale, mask add, softmax, matMul), forward and forward+backward, on Node
 * through Dawn. b=2, h=16, d 64 and 128, seq 512..4096, no mask and causal; fp32 (tfjs's only float type) and
 * fp16 for the @te backends. Times are medians over --reps calls after --warmup calls, each call ended by
 * queue.onSubmittedWorkDone(); "pipelined" is the mean of calls submitted back to back (timeCalls), and "GPU" the
 * mean over --gpu-calls calls of their GPU time by timestamps around compute passes, where the device has
 * timestamp-query: ours the union of each call's pass intervals (recordPassTimes; one call at a time), tfjs's the sum
 * of its kernels' times from its own tf.time. Both leave out host overhead. Memory is the peak of GPU buffer bytes held during a call beyond its inputs
 * (outputs and saved state included): counted through GPUDevice.createBuffer/GPUBuffer.destroy for the @te
 * backends, and from tfjs's own buffer manager (bytes in use; its pool reuses freed buffers) for tfjs.
 * Prints one JSON line per measurement and a table with the ratios; --out writes everything as JSON.
 */
import { writeFileSync } from "node:fs";
import {
  type AttentionBackend,
  type AttentionParams,
  generateValues,
  hostTensor,
  makeParams,
} from "@te/core";
import {
  disposeTensor,
  download,
  finishPassTimes,
  getDevice,
  hostValues,
  recordPassTimes,
  releasePooledBuffers,
  upload,
  type WebGpuTensor,
  webgpuFlash,
  webgpuUnfused,
} from "@te/webgpu";
import { countGpuMemory, type GpuMemoryCounter } from "./gpu-memory.js";
import { type TfjsAttention, type TfjsCall, tfjsAttention } from "./tfjs-attention.js";

type Pass = "fwd" | "fwd+bwd";
interface Measurement {
  backend: string;
  dtype: string;
  mask: string;
  d: number;
  seq: number;
  pass: Pass;
  ms: number;
  tflops: number;
  pipelinedMs?: number;
  pipelinedCalls?: number;
  /** GPU ms per call from timestamps around each compute pass (ours: recordPassTimes; tfjs: tf.time). */
  gpuMs?: number;
  peakBytes: number;
  skipped?: string;
}

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : fallback;
};
const SEQS = option("seqs", "512,1024,2048,4096").split(",").map(Number);
const DIMS = option("dims", "64,128").split(",").map(Number);
const DTYPES = option("dtypes", "fp32,fp16").split(",") as ("fp32" | "fp16")[];
const REPS = Number(option("reps", "10"));
const WARMUP = Number(option("warmup", "2"));
/** The pipelined run submits calls for about this much GPU time (and at least --reps calls). */
const PIPELINED_MS = Number(option("pipelined-ms", "200"));
/** Calls whose passes are timed on the GPU (0: none); where the device has timestamp-query. */
const GPU_CALLS = Number(option("gpu-calls", "10"));
const OUT = option("out", "");
const B = Number(option("b", "2"));
const BACKENDS = option("backends", "flash,unfused,tfjs").split(",");
const PASSES = option("passes", "fwd,fwd+bwd").split(",") as Pass[];
const MASKS = option("masks", "no_mask,causal").split(",") as ("no_mask" | "causal")[];
/** Longest sequence timed with backward (backward of long sequences can take seconds per call). */
const BWD_MAX_SEQ = Number(option("bwd-max-seq", "1000000"));
/**
 * Extra webgpu.flash runs with other tiles or switches: a JSON list of {name, tiles?, env?}, `tiles` as
 * TE_WEBGPU_FLASH_TILES takes it (packages/webgpu/src/flash/tile-override.ts), `env` more environment variables
 * set during the variant's calls (such as TE_WEBGPU_FLASH_CLASS_LOOPS); recorded as backend "webgpu.flash:<name>".
 */
const TILE_VARIANTS = JSON.parse(option("tile-variants", "[]")) as {
  name: string;
  tiles?: object;
  env?: Record<string, string>;
}[];
const passesAt = (seq: number): Pass[] => PASSES.filter((pass) => pass === "fwd" || seq <= BWD_MAX_SEQ);
const H = Number(option("h", "16"));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

interface Timing {
  /** Median of calls each waited for (latency: includes submitting and Dawn's completion callback). */
  ms: number;
  /**
   * Mean of calls submitted back to back with one wait at the end: the GPU time per call once the per-call
   * host overhead (about 2 ms of the latency at these sizes, for tfjs as well) overlaps the GPU work. As many
   * calls as take about --pipelined-ms by the latency (at least --reps, at most 1000): a run of a few calls
   * varied up to 2x between identical runs on the H200, as the GPU's clocks had no time to settle.
   */
  pipelinedMs: number;
  pipelinedCalls: number;
}

/** A measurement from its timings; TFLOP/s by the latency. */
function measurement(
  base: Pick<Measurement, "backend" | "dtype" | "mask" | "d" | "seq" | "pass">,
  t: Timing & { peakBytes: number; gpuMs: number | null },
  flops: number,
): Measurement {
  const { ms, pipelinedMs, pipelinedCalls, peakBytes, gpuMs } = t;
  return {
    ...base,
    ms,
    tflops: flops / (ms * 1e9),
    pipelinedMs,
    pipelinedCalls,
    ...(gpuMs === null ? {} : { gpuMs }),
    peakBytes,
  };
}

/** Times `call` (which returns after submitting its work and a disposer) to GPU completion. */
async function timeCalls(device: GPUDevice, call: () => Promise<() => void>): Promise<Timing> {
  const times: number[] = [];
  for (let rep = 0; rep < WARMUP + REPS; rep++) {
    const started = performance.now();
    const dispose = await call();
    await device.queue.onSubmittedWorkDone();
    const ms = performance.now() - started;
    dispose();
    if (rep >= WARMUP) times.push(ms);
  }
  const ms = median(times);
  const pipelinedCalls = Math.min(1000, Math.max(REPS, Math.ceil(PIPELINED_MS / ms)));
  const started = performance.now();
  // Each call's outputs are freed once it is submitted: WebGPU keeps a destroyed buffer for work already
  // submitted, and tfjs's pool hands it to a later call, whose writes the queue orders after.
  for (let rep = 0; rep < pipelinedCalls; rep++) (await call())();
  await device.queue.onSubmittedWorkDone();
  const pipelinedMs = (performance.now() - started) / pipelinedCalls;
  return { ms, pipelinedMs, pipelinedCalls };
}

/** Runs `call` once inside validation and out-of-memory error scopes; a WebGPU error there becomes a throw. */
async function checkedOnce(device: GPUDevice, call: () => Promise<() => void>): Promise<void> {
  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  let dispose: (() => void) | undefined;
  let thrown: unknown = null;
  try {
    dispose = await call();
    await device.queue.onSubmittedWorkDone();
  } catch (e) {
    thrown = e;
  }
  // Both scopes are popped whether or not the call threw, so later calls start with a clean stack.
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  dispose?.();
  if (thrown) throw thrown;
  const error = validation ?? oom;
  if (error)
    throw new Error(
      `WebGPU ${validation ? "validation" : "out-of-memory"} error: ${error.message.split("\n")[0]}`,
    );
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= worst)) worst = d; // NaN makes the result NaN
  }
  return worst;
}

async function benchTe(
  device: GPUDevice,
  memory: GpuMemoryCounter,
  backend: AttentionBackend<WebGpuTensor>,
  p: AttentionParams,
  inputs: { q: WebGpuTensor; k: WebGpuTensor; v: WebGpuTensor; dO: WebGpuTensor },
  pass: Pass,
): Promise<Timing & { peakBytes: number }> {
  const call = async () => {
    const fwd = await backend.forward({ q: inputs.q, k: inputs.k, v: inputs.v }, p);
    if (pass === "fwd") {
      fwd.saved.release();
      return () => {
        disposeTensor(fwd.o);
        disposeTensor(fwd.lse);
      };
    }
    const g = await backend.backward(fwd.saved, inputs.dO, p);
    return () => {
      for (const t of [fwd.o, fwd.lse, g.dq, g.dk, g.dv]) disposeTensor(t);
    };
  };
  // The pool's buffers from earlier rows would count as this call's memory.
  releasePooledBuffers(device);
  memory.startPeak();
  await checkedOnce(device, call);
  const peakBytes = memory.peakSinceStart();
  const timing = await timeCalls(device, call);
  return { ...timing, peakBytes, gpuMs: await gpuMsOfTe(device, call) };
}

/**
 * The GPU's busy time over passes: the length of the union of their [start, end] intervals. Not their sum
 * (a pass's start can be written while the pass ahead of it still runs: pass-times.ts) and not their span (a
 * call's fp16 output is packed in a second submission, which the GPU can wait for on the host).
 */
function busyMs(passes: readonly { start: number; end: number }[]): number {
  const sorted = [...passes].sort((a, b) => a.start - b.start);
  let busy = 0;
  let [from, to] = [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY];
  for (const { start, end } of sorted) {
    if (start > to) {
      if (to > from) busy += to - from;
      [from, to] = [start, end];
    } else to = Math.max(to, end);
  }
  return to > from ? busy + (to - from) : busy;
}

/**
 * Mean GPU ms per call over GPU_CALLS calls, each run alone (waited for before the next): the time its passes
 * kept the GPU busy (busyMs), by timestamps; null if untimed.
 */
async function gpuMsOfTe(device: GPUDevice, call: () => Promise<() => void>): Promise<number | null> {
  if (GPU_CALLS < 1 || !device.features.has("timestamp-query")) return null;
  let sum = 0;
  for (let rep = 0; rep < GPU_CALLS; rep++) {
    // Room for every pass: a fwd+bwd call runs well under 16 of them.
    recordPassTimes(device, 16);
    const dispose = await call();
    await device.queue.onSubmittedWorkDone();
    dispose();
    const { passes, untimed } = await finishPassTimes(device);
    if (untimed > 0) throw new Error(`${untimed} passes went untimed: raise recordPassTimes's capacity`);
    sum += busyMs(passes);
  }
  return sum / GPU_CALLS;
}

/** Mean of tfjs's own kernel ms over GPU_CALLS calls; null if untimed. */
async function gpuMsOfTfjs(tf: TfjsAttention, call: TfjsCall): Promise<number | null> {
  if (GPU_CALLS < 1) return null;
  let sum = 0;
  for (let rep = 0; rep < GPU_CALLS; rep++) {
    const ms = await tf.kernelMs(call);
    if (ms === null) return null;
    sum += ms;
  }
  return sum / GPU_CALLS;
}

async function main() {
  const device = await getDevice();
  const memory = countGpuMemory(device);
  const info = device.adapterInfo;
  const adapter = info
    ? {
        vendor: info.vendor,
        architecture: info.architecture,
        device: info.device,
        description: info.description,
      }
    : null;
  const features = [...device.features].sort();
  console.error(`te device: ${JSON.stringify(adapter)} features: ${features.join(",")}`);
  let tfjs: TfjsAttention | null = null;
  let tfjsProblem = "";
  try {
    tfjs = await tfjsAttention();
  } catch (e) {
    tfjsProblem = `tfjs-webgpu unavailable: ${(e as Error).message}`;
    console.error(tfjsProblem);
  }
  const results: Measurement[] = [];
  const checks: { d: number; mask: string; seq: number; tfjsVsFlashMaxAbs: number }[] = [];
  const record = (m: Measurement) => {
    results.push(m);
    console.log(JSON.stringify(m));
  };
  for (const dtype of DTYPES) {
    for (const d of DIMS) {
      for (const mask of MASKS) {
        for (const seq of SEQS) {
          const p = makeParams({
            b: B,
            h: H,
            d,
            sq: seq,
            maskType: mask,
            dtype,
            device: "webgpu",
            isTraining: true,
          });
          const n = B * seq * H * d;
          const host = [0, 1, 2, 3].map((stream) =>
            hostTensor("fp32", [B, seq, H, d], Float32Array.from(generateValues(7, stream, n, 1))),
          );
          const [q, k, v, dO] = (await Promise.all(
            host.map((t) => upload(t, device, dtype)),
          )) as WebGpuTensor[];
          // Matmul FLOPs: 4 b h s^2 d forward (QK^T, PV), 2.5x that more with backward; halved for causal.
          const fwdFlops = (4 * B * H * seq * seq * d) / (mask === "causal" ? 2 : 1);
          const flopsOf = (pass: Pass) => (pass === "fwd" ? fwdFlops : 3.5 * fwdFlops);
          const backends = [webgpuFlash, webgpuUnfused].filter((b) =>
            BACKENDS.includes(b.id.replace("webgpu.", "")),
          );
          for (const backend of backends) {
            const verdict = backend.explain(p, { cudaArch: null, env: {} });
            for (const pass of passesAt(seq)) {
              const base = { backend: backend.id, dtype, mask, d, seq, pass };
              if (!verdict.ok) {
                record({
                  ...base,
                  ms: Number.NaN,
                  tflops: 0,
                  peakBytes: 0,
                  skipped: verdict.reasons.map((r) => r.message).join("; "),
                });
                continue;
              }
              try {
                const timing = await benchTe(device, memory, backend, p, { q, k, v, dO }, pass);
                record(measurement(base, timing, flopsOf(pass)));
              } catch (e) {
                record({ ...base, ms: Number.NaN, tflops: 0, peakBytes: 0, skipped: (e as Error).message });
              }
            }
          }
          // The output, and the gradients where backward is timed: the reference for the variants' check.
          const flashOutput = async () => {
            const fwd = await webgpuFlash.forward({ q, k, v }, p);
            const o = hostValues(await download(fwd.o, device));
            if (!passesAt(seq).includes("fwd+bwd")) {
              fwd.saved.release();
              for (const t of [fwd.o, fwd.lse]) disposeTensor(t);
              return [o];
            }
            const g = await webgpuFlash.backward(fwd.saved, dO, p);
            const grads = [];
            for (const t of [g.dq, g.dk, g.dv]) grads.push(hostValues(await download(t, device)));
            for (const t of [fwd.o, fwd.lse, g.dq, g.dk, g.dv]) disposeTensor(t);
            return [o, ...grads];
          };
          const reference = TILE_VARIANTS.length > 0 && seq === SEQS[0] ? await flashOutput() : null;
          for (const variant of TILE_VARIANTS) {
            const variantEnv = {
              ...(variant.tiles ? { TE_WEBGPU_FLASH_TILES: JSON.stringify(variant.tiles) } : {}),
              ...variant.env,
            };
            Object.assign(process.env, variantEnv);
            if (reference) {
              const ours = await flashOutput();
              const diff = Math.max(...ours.map((x, i) => maxAbsDiff(x, reference[i])));
              console.error(
                `check ${JSON.stringify({ variant: variant.name, d, mask, seq, vsDefaultTilesMaxAbs: diff })}`,
              );
            }
            for (const pass of passesAt(seq)) {
              const base = { backend: `webgpu.flash:${variant.name}`, dtype, mask, d, seq, pass };
              try {
                const timing = await benchTe(device, memory, webgpuFlash, p, { q, k, v, dO }, pass);
                record(measurement(base, timing, flopsOf(pass)));
              } catch (e) {
                record({ ...base, ms: Number.NaN, tflops: 0, peakBytes: 0, skipped: (e as Error).message });
              }
            }
            for (const name of Object.keys(variantEnv)) delete process.env[name];
          }
          if (dtype === "fp32" && BACKENDS.includes("tfjs")) {
            for (const pass of passesAt(seq)) {
              const base = { backend: "tfjs-webgpu", dtype, mask, d, seq, pass };
              if (!tfjs) {
                record({ ...base, ms: Number.NaN, tflops: 0, peakBytes: 0, skipped: tfjsProblem });
                continue;
              }
              const tf = tfjs;
              let call: ReturnType<TfjsAttention["prepare"]> | null = null;
              try {
                call = tf.prepare(host, mask === "causal", p.softmaxScale, pass === "fwd+bwd");
                const run = async () => (call as NonNullable<typeof call>).run();
                tf.startPeak();
                await checkedOnce(tf.device, run);
                const peakBytes = tf.peakSinceStart();
                const timing = await timeCalls(tf.device, run);
                const gpuMs = await gpuMsOfTfjs(tf, call);
                record(measurement(base, { ...timing, peakBytes, gpuMs }, flopsOf(pass)));
              } catch (e) {
                record({
                  ...base,
                  ms: Number.NaN,
                  tflops: 0,
                  peakBytes: 0,
                  skipped: (e as Error).message.split("\n")[0],
                });
              } finally {
                call?.dispose();
              }
            }
            // Same answer: tfjs's output against webgpu.flash's on the smallest sequence length.
            if (tfjs && seq === SEQS[0]) {
              const fwd = await webgpuFlash.forward({ q, k, v }, p);
              const ours = hostValues(await download(fwd.o, device));
              fwd.saved.release();
              disposeTensor(fwd.o);
              disposeTensor(fwd.lse);
              const theirs = await tfjs.output(host, mask === "causal", p.softmaxScale);
              const check = { d, mask, seq, tfjsVsFlashMaxAbs: maxAbsDiff(ours, theirs) };
              checks.push(check);
              console.error(`check ${JSON.stringify(check)}`);
            }
          }
          for (const t of [q, k, v, dO]) t.buffer.destroy();
        }
      }
    }
  }
  const table = summaryTable(results);
  console.log(`\n${table}`);
  if (TILE_VARIANTS.length > 0) console.log(`\n${variantTable(results)}`);
  if (OUT) {
    const meta = {
      b: B,
      h: H,
      reps: REPS,
      warmup: WARMUP,
      adapter,
      features,
      tfjsAdapter: tfjs?.adapterInfo ?? null,
    };
    writeFileSync(OUT, JSON.stringify({ meta, checks, results }, null, 2));
  }
}

/**
 * One row per (dtype, d, mask, seq, pass): ms and peak MiB per backend, and tfjs/flash and unfused/flash ratios.
 * tfjs runs fp32 only (its one float type): fp16 rows compare against its fp32 time of the same shape.
 */
function summaryTable(results: Measurement[]): string {
  const shape = (r: Measurement) => `d${r.d} ${r.mask} ${r.seq} ${r.pass}`;
  const key = (r: Measurement) => `${r.dtype} ${shape(r)}`;
  const rows = new Map<string, Map<string, Measurement>>();
  for (const r of results) {
    if (!rows.has(key(r))) rows.set(key(r), new Map());
    rows.get(key(r))?.set(r.backend, r);
  }
  for (const r of results) {
    if (r.backend !== "tfjs-webgpu") continue;
    const fp16 = rows.get(`fp16 ${shape(r)}`);
    if (fp16 && !fp16.has("tfjs-webgpu")) fp16.set("tfjs-webgpu", r);
  }
  const ms = (r?: Measurement) => (r && !r.skipped ? r.ms.toFixed(2) : "-");
  const pms = (r?: Measurement) => (r && !r.skipped && r.pipelinedMs ? r.pipelinedMs.toFixed(2) : "-");
  const pratio = (slow?: Measurement, fast?: Measurement) =>
    slow?.pipelinedMs && fast?.pipelinedMs && !slow.skipped && !fast.skipped
      ? `${(slow.pipelinedMs / fast.pipelinedMs).toFixed(2)}x`
      : "-";
  const gms = (r?: Measurement) => (r && !r.skipped && r.gpuMs ? r.gpuMs.toFixed(2) : "-");
  const gratio = (slow?: Measurement, fast?: Measurement) =>
    slow?.gpuMs && fast?.gpuMs && !slow.skipped && !fast.skipped
      ? `${(slow.gpuMs / fast.gpuMs).toFixed(2)}x`
      : "-";
  const mib = (r?: Measurement) => (r && !r.skipped ? (r.peakBytes / 2 ** 20).toFixed(1) : "-");
  const ratio = (slow?: Measurement, fast?: Measurement) =>
    slow && fast && !slow.skipped && !fast.skipped ? `${(slow.ms / fast.ms).toFixed(2)}x` : "-";
  const lines = [
    "| dtype d mask seq pass | flash ms | unfused ms | tfjs (fp32) ms | tfjs/flash | unfused/flash | flash MiB | unfused MiB | tfjs MiB | flash pipelined ms | tfjs pipelined ms | tfjs/flash pipelined | flash GPU ms | tfjs GPU ms | tfjs/flash GPU |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const [k, byBackend] of rows) {
    const f = byBackend.get("webgpu.flash");
    const u = byBackend.get("webgpu.unfused");
    const t = byBackend.get("tfjs-webgpu");
    lines.push(
      `| ${k} | ${ms(f)} | ${ms(u)} | ${ms(t)} | ${ratio(t, f)} | ${ratio(u, f)} | ${mib(f)} | ${mib(u)} | ${mib(t)} | ${pms(f)} | ${pms(t)} | ${pratio(t, f)} | ${gms(f)} | ${gms(t)} | ${gratio(t, f)} |`,
    );
  }
  return lines.join("\n");
}

/** ms and TFLOP/s of webgpu.flash with its own tiles and with each --tile-variants entry. */
function variantTable(results: Measurement[]): string {
  const names = ["webgpu.flash", ...TILE_VARIANTS.map((v) => `webgpu.flash:${v.name}`)];
  const rows = new Map<string, Map<string, Measurement>>();
  for (const r of results) {
    if (!names.includes(r.backend)) continue;
    const key = `${r.dtype} d${r.d} ${r.mask} ${r.seq} ${r.pass}`;
    if (!rows.has(key)) rows.set(key, new Map());
    rows.get(key)?.set(r.backend, r);
  }
  const cell = (r?: Measurement) =>
    r && !r.skipped
      ? `${r.ms.toFixed(2)} / ${r.pipelinedMs?.toFixed(2) ?? "-"} / ${r.gpuMs?.toFixed(2) ?? "-"} (${r.tflops.toFixed(1)})`
      : "-";
  const lines = [
    `| dtype d mask seq pass | ${names.join(" | ")} |`,
    `|---|${names.map(() => "---:").join("|")}|`,
  ];
  for (const [k, byName] of rows)
    lines.push(`| ${k} | ${names.map((n) => cell(byName.get(n))).join(" | ")} |`);
  return `ms / pipelined ms / GPU ms (TFLOP/s of ms)\n${lines.join("\n")}`;
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
