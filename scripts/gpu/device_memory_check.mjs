// On the GPU machine (node, CUDA addon, TE_NATIVE_ADDON set): what V8 is told about DeviceTensor memory
// (src/addon/external_memory.h), checked by behaviour, not by time:
//  1. a loop that allocates 64 MiB of outputs per iteration and disposes them starts no mark-compact
//     GC after its first iterations, and the amount reported to V8 stays put;
//  2. tensors that are never disposed (dropped references) are still finalized: the live device bytes
//     stay bounded while 25 GiB is allocated in 64 MiB pieces, with the event loop turning as in an
//     async training loop;
//  3. liveBytes returns to its start once everything is disposed or collected.
//   node scripts/gpu/device_memory_check.mjs BUNDLE_DIR
import path from "node:path";
import { PerformanceObserver } from "node:perf_hooks";

const dir = path.resolve(process.argv[2] ?? ".gpu");
const native = await import(path.join(dir, "node_modules/@te/native/dist/index.js"));
const binding = native.loadBinding();
const MiB = 2 ** 20;
// The mark-compact GCs seen (full or incremental: what external memory pressure starts).
let majors = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = e.detail?.kind ?? e.kind;
    if (kind === 4 || kind === 8) majors++;
  }
}).observe({ entryTypes: ["gc"] });
const tick = () => new Promise((r) => setImmediate(r));
let failures = 0;
const report = (ok, what, detail) => {
  if (!ok) failures++;
  console.log(`${ok ? "PASS" : "FAIL"} ${what}: ${detail}`);
};
const mem = () => binding.externalMemory();
const start = mem().liveBytes;

// 1. allocate + dispose: 64 MiB inputs held, 64 MiB of outputs per iteration.
const inputs = [0, 1, 2, 3].map(() => new binding.DeviceTensor(16 * MiB));
for (let it = 0; it < 5; it++) {
  const outs = [16, 16, 16, 16].map((m) => new binding.DeviceTensor(m * MiB));
  await tick();
  for (const t of outs) t.dispose();
}
await tick();
const gc0 = majors;
const reported0 = mem().reportedBytes;
let reportedMoved = 0;
for (let it = 0; it < 200; it++) {
  const outs = [16, 0.25, 16, 16, 16].map((m) => new binding.DeviceTensor(m * MiB));
  if (mem().reportedBytes !== reported0) reportedMoved++;
  await tick();
  for (const t of outs) t.dispose();
}
await tick();
report(
  majors - gc0 === 0,
  "allocate+dispose loop starts no mark-compact GC",
  `${majors - gc0} in 200 iterations of 64 MiB`,
);
report(
  reportedMoved === 0,
  "allocate+dispose loop reports nothing new to V8",
  `reported ${(reported0 / MiB).toFixed(0)} MiB, moved in ${reportedMoved} of 200 iterations`,
);
for (const t of inputs) t.dispose();

// 2. never disposed: 400 x 64 MiB dropped at once.
const gc1 = majors;
let peak = 0;
for (let it = 0; it < 400; it++) {
  new binding.DeviceTensor(64 * MiB);
  peak = Math.max(peak, mem().liveBytes);
  await tick();
}
report(
  peak < 8 * 2 ** 30,
  "undisposed tensors are finalized (bounded live memory)",
  `peak live ${(peak / 2 ** 30).toFixed(2)} GiB of 25 GiB allocated, ${majors - gc1} mark-compact GCs`,
);

// 3. back to the start once collected (a few GCs and turns of the loop).
for (let i = 0; i < 50 && mem().liveBytes > start; i++) {
  if (globalThis.gc) globalThis.gc();
  else new ArrayBuffer(64 * MiB); // some heap pressure
  await tick();
  await new Promise((r) => setTimeout(r, 5));
}
report(
  mem().liveBytes === start || !globalThis.gc,
  "every byte is accounted for after collection",
  `live ${mem().liveBytes} bytes (start ${start})${globalThis.gc ? "" : " (run with --expose-gc to check)"}`,
);
console.log(failures === 0 ? "device memory check: all passed" : `device memory check: ${failures} FAILED`);
process.exitCode = failures === 0 ? 0 : 1;
