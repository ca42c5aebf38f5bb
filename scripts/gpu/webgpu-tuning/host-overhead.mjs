// GPU job step (flash-matrix-job.sh "host"): where the host time of a webgpu.flash call goes on the GPU machine.
// Run under `node --cpu-prof` for a function-level profile of N back-to-back forward calls (outputs disposed,
// then destroyed) (b2 h16 s2048 d64
// fp16, no mask), and prints the cost of the Dawn operations a call is made of, one JSON line each: buffer
// creation (small and 8 MiB, each used once by a clear and destroyed), writeBuffer, an empty submit, an error
// scope pair, and onSubmittedWorkDone on an idle queue. Through the bundle's packages.
import { generateValues, hostTensor, makeParams } from "@te/core";
import { disposeTensor, getDevice, upload, webgpuFlash } from "@te/webgpu";

const device = await getDevice();
const N = Number(process.env.HOST_CALLS ?? 300);
const mean = async (n, op) => {
  const started = performance.now();
  for (let i = 0; i < n; i++) await op(i);
  await device.queue.onSubmittedWorkDone();
  return (performance.now() - started) / n;
};
const line = (what, ms) => console.log(JSON.stringify({ what, ms: +ms.toFixed(4) }));

const [b, s, h, d] = [2, Number(process.env.HOST_SEQ ?? 2048), 16, 64];
const p = makeParams({ b, h, d, sq: s, maskType: "no_mask", dtype: "fp16", device: "webgpu", isTraining: true });
const values = (stream) => Float32Array.from(generateValues(7, stream, b * s * h * d, 1));
const [q, k, v] = await Promise.all([0, 1, 2].map((i) => upload(hostTensor("fp32", [b, s, h, d], values(i)), device, "fp16")));
// Outputs given back with disposeTensor (reused by the next call), or destroyed.
const call = async () => {
  const out = await webgpuFlash.forward({ q, k, v }, p);
  out.saved.release();
  disposeTensor(out.o);
  disposeTensor(out.lse);
};
const destroying = async () => {
  const out = await webgpuFlash.forward({ q, k, v }, p);
  out.saved.release();
  out.o.buffer.destroy();
  out.lse.buffer.destroy();
};
await mean(20, call);
line(`forward call, ${N} back to back`, await mean(N, call));
line(`forward call, ${N} back to back, outputs destroyed`, await mean(N, destroying));
line("forward call, each waited for", await mean(50, async () => {
  await call();
  await device.queue.onSubmittedWorkDone();
}));

const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const used = (size) => {
  const buffer = device.createBuffer({ size, usage });
  const encoder = device.createCommandEncoder();
  encoder.clearBuffer(buffer);
  device.queue.submit([encoder.finish()]);
  buffer.destroy();
};
line("createBuffer 16 B + clear + submit + destroy", await mean(500, () => used(16)));
line("createBuffer 8 MiB + clear + submit + destroy", await mean(200, () => used(8 << 20)));
const kept = device.createBuffer({ size: 8 << 20, usage });
line("clear of a kept 8 MiB buffer + submit", await mean(200, () => {
  const encoder = device.createCommandEncoder();
  encoder.clearBuffer(kept);
  device.queue.submit([encoder.finish()]);
}));
const small = new Uint32Array(64);
line("writeBuffer 256 B", await mean(1000, () => device.queue.writeBuffer(kept, 0, small)));
line("empty submit", await mean(1000, () => device.queue.submit([])));
line("error scope pair, awaited", await mean(500, async () => {
  device.pushErrorScope("validation");
  await device.popErrorScope();
}));
line("onSubmittedWorkDone, idle queue", await mean(500, () => device.queue.onSubmittedWorkDone()));
process.exit(0);
