/**
 * The example page: causal attention on b=1, h=2, s=128, d=64 through whatever backend selection picks for
 * WebGPU tensors (webgpu.flash where the browser has WebGPU), timed, checked against the float64 reference,
 * and drawn as an attention map (head 0) from the backend's lse. Without WebGPU the page runs the reference
 * on the CPU and says why. The outcome is left on `window.teResult` for the headless test.
 */
import {
  type AttentionParams,
  generateValues,
  type HostTensor,
  hostTensor,
  makeParams,
  referenceBackend,
  selectBackend,
  toFloat64,
} from "@te/core";
import { download, getDevice, upload, type WebGpuTensor } from "@te/webgpu";

const SHAPE = { b: 1, h: 2, sq: 128, d: 64 } as const;
const SEED = 1234;

export interface PageResult {
  readonly backend: string;
  readonly webgpu: boolean;
  /** Why WebGPU did not run (empty when it did). */
  readonly reason: string;
  readonly ms: number;
  readonly maxError: number;
  readonly done: true;
}

function input(stream: number): HostTensor {
  const { b, h, sq, d } = SHAPE;
  return hostTensor("fp32", [b, sq, h, d], Float32Array.from(generateValues(SEED, stream, b * sq * h * d, 1)));
}

const params = (device: string): AttentionParams => makeParams({ ...SHAPE, maskType: "causal", device });

async function runOnWebGpu(q: HostTensor, k: HostTensor, v: HostTensor) {
  await getDevice();
  const p = params("webgpu");
  const { backend } = selectBackend(p);
  const inputs = { q: (await upload(q)) as WebGpuTensor, k: await upload(k), v: await upload(v) };
  // The first call compiles the pipelines; time the second.
  const warm = await backend.forward(inputs, p);
  warm.saved.release();
  const started = performance.now();
  const fwd = await backend.forward(inputs, p);
  const o = await download(fwd.o as WebGpuTensor);
  const ms = performance.now() - started;
  const lse = await download(fwd.lse as WebGpuTensor);
  fwd.saved.release();
  return { backend: backend.id, o: toFloat64(o), lse: toFloat64(lse), ms };
}

async function runReference(q: HostTensor, k: HostTensor, v: HostTensor) {
  const p = params("host");
  const started = performance.now();
  const fwd = await referenceBackend.forward({ q, k, v }, p);
  const ms = performance.now() - started;
  fwd.saved.release();
  return { backend: referenceBackend.id, o: toFloat64(fwd.o), lse: toFloat64(fwd.lse), ms };
}

/** Head 0's probabilities P[i, j] = exp(scale * q_i . k_j - lse_i) for j <= i, drawn with a gamma for contrast. */
function drawMap(canvas: HTMLCanvasElement, q: HostTensor, k: HostTensor, lse: Float64Array): void {
  const { h, sq, d } = SHAPE;
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const image = ctx.createImageData(sq, sq);
  const scale = 1 / Math.sqrt(d);
  for (let i = 0; i < sq; i++) {
    for (let j = 0; j < sq; j++) {
      let p = 0;
      if (j <= i) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q.data[(i * h + 0) * d + c] * k.data[(j * h + 0) * d + c];
        p = Math.exp(scale * dot - lse[i]);
      }
      const shade = Math.round(255 * (1 - Math.sqrt(Math.min(1, p))));
      const at = (i * sq + j) * 4;
      image.data.set([shade, shade, 255, 255], at);
    }
  }
  ctx.putImageData(image, 0, 0);
}

async function main(): Promise<PageResult> {
  const q = input(0);
  const k = input(1);
  const v = input(2);
  let run: Awaited<ReturnType<typeof runOnWebGpu>>;
  let reason = "";
  try {
    run = await runOnWebGpu(q, k, v);
  } catch (e) {
    reason = (e as Error).message;
    run = await runReference(q, k, v);
  }
  const expected = run.backend === referenceBackend.id ? run : await runReference(q, k, v);
  let maxError = 0;
  for (let i = 0; i < expected.o.length; i++) {
    const err = Math.abs(run.o[i] - expected.o[i]);
    maxError = Number.isNaN(err) ? Number.POSITIVE_INFINITY : Math.max(maxError, err);
  }
  const text = (id: string, value: string) => {
    const el = document.getElementById(id);
    if (el) el.textContent = value;
  };
  text("backend", run.backend);
  text("why", reason === "" ? "selected for WebGPU tensors" : `WebGPU unavailable, ran the CPU reference: ${reason}`);
  text("time", `${run.ms.toFixed(2)} ms (forward + read-back)`);
  text("error", maxError.toExponential(2));
  const canvas = document.getElementById("map");
  if (canvas instanceof HTMLCanvasElement) drawMap(canvas, q, k, run.lse);
  return { backend: run.backend, webgpu: reason === "", reason, ms: run.ms, maxError, done: true };
}

const target = window as unknown as { teResult?: PageResult | { error: string; done: true } };
main().then(
  (r) => {
    target.teResult = r;
  },
  (e: unknown) => {
    target.teResult = { error: String((e as Error)?.stack ?? e), done: true };
  },
);
