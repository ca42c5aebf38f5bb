// On the GPU machine (node, CUDA addon, TE_NATIVE_ADDON set): the host cost of each piece of one cuda.*
// call, in microseconds per call (median of 5 batches): output allocation and dispose through the pool,
// a device memset, the descriptor and explain, the family's enqueue alone (outputs allocated once), the
// backend's forward/backward (JS checks + outputs + enqueue), and awaiting synchronize() on an idle GPU
// (the round trip through the thread pool). Device-bound times of the enqueued calls come with them.
//   node scripts/gpu/host_call_parts.mjs BUNDLE_DIR [configs=test_0,test_1] [backends=cuda.cudnn,cuda.flash]
import path from "node:path";

const dir = path.resolve(process.argv[2] ?? ".gpu");
const configNames = (process.argv[3] ?? "test_0,test_1").split(",");
const backendIds = (process.argv[4] ?? "cuda.cudnn,cuda.flash").split(",");
const core = await import(path.join(dir, "node_modules/@te/core/dist/index.js"));
const native = await import(path.join(dir, "node_modules/@te/native/dist/index.js"));
const { makeParams, getBackend } = core;
const { cudaTensors, allocateTensor, nativeDesc, loadBinding } = native;
const binding = loadBinding();
const MiB = 2 ** 20;

const CONFIGS = {
  test_0: { b: 2, h: 16, d: 64, sq: 512, causal: false },
  test_1: { b: 2, h: 16, d: 128, sq: 2048, causal: true },
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const r2 = (x) => Number(x.toFixed(2));

/** Microseconds per call of a synchronous f, median of 5 batches of n. */
function perCall(f, n = 200) {
  for (let i = 0; i < 20; i++) f();
  const batches = [];
  for (let k = 0; k < 5; k++) {
    const t = performance.now();
    for (let i = 0; i < n; i++) f();
    batches.push(((performance.now() - t) / n) * 1000);
  }
  return r2(median(batches));
}
async function perCallAsync(f, n = 200) {
  for (let i = 0; i < 20; i++) await f();
  const batches = [];
  for (let k = 0; k < 5; k++) {
    const t = performance.now();
    for (let i = 0; i < n; i++) await f();
    batches.push(((performance.now() - t) / n) * 1000);
  }
  return r2(median(batches));
}
/** Host us per enqueue of n calls queued back to back, and device-bound us per call (one wait at the end). */
async function queued(f, n = 50) {
  for (let i = 0; i < 5; i++) f();
  await binding.synchronize(0);
  const host = [];
  const device = [];
  for (let k = 0; k < 5; k++) {
    const t = performance.now();
    for (let i = 0; i < n; i++) f();
    const t1 = performance.now();
    await binding.synchronize(0);
    host.push(((t1 - t) / n) * 1000);
    device.push(((performance.now() - t) / n) * 1000);
  }
  return { hostUs: r2(median(host)), deviceBoundUs: r2(median(device)) };
}

const out = {};
await binding.synchronize(0);
out.awaitResolvedPromiseUs = await perCallAsync(() => Promise.resolve());
out.synchronizeIdleUs = await perCallAsync(() => binding.synchronize(0));
out.alloc16MiBDisposeUs = perCall(() => new binding.DeviceTensor(16 * MiB).dispose());
out.alloc256KiBDisposeUs = perCall(() => new binding.DeviceTensor(MiB / 4).dispose());
{
  const t = new binding.DeviceTensor(16 * MiB);
  out.zero16MiBUs = perCall(() => t.zero());
  await binding.synchronize(0);
  t.dispose();
}
out.externalMemoryUs = perCall(() => binding.externalMemory());
console.log(JSON.stringify({ parts: out }));

const rows = [];
for (const name of configNames) {
  const c = CONFIGS[name];
  const p = makeParams({
    b: c.b,
    h: c.h,
    d: c.d,
    sq: c.sq,
    dtype: "bf16",
    device: "cuda",
    maskType: c.causal ? "causal" : "no_mask",
    isTraining: true,
  });
  const shape = [c.b, c.sq, c.h, c.d];
  const make = () => allocateTensor("bf16", shape, 0, true);
  const [q, k, v, dO, o, dq, dk, dv] = [0, 1, 2, 3, 4, 5, 6, 7].map(make);
  const lse = allocateTensor("fp32", [c.b, c.h, c.sq], 0, true);
  const view = (t) => ({ data: t.buffer, offset: 0, b: c.sq * c.h * c.d, s: c.h * c.d, h: c.d, c: 1 });
  const fwdArgs = { q: view(q), k: view(k), v: view(v), o: view(o), lse: lse.buffer };
  const bwdArgs = { ...fwdArgs, dO: view(dO), dq: view(dq), dk: view(dk), dv: view(dv) };
  for (const id of backendIds) {
    const backend = getBackend(id);
    if (!backend) continue;
    const row = { config: name, backend: id };
    try {
      const desc = nativeDesc(p);
      row.nativeDescUs = perCall(() => nativeDesc(p));
      row.explainUs = perCall(() => binding.explain(id, desc));
      // Real kernels queued: fewer calls per batch, and the first call builds plans.
      binding.enqueueForward(id, desc, fwdArgs);
      binding.enqueueBackward(id, desc, bwdArgs);
      await binding.synchronize(0);
      const f = await queued(() => binding.enqueueForward(id, desc, fwdArgs));
      row.enqueueFwdHostUs = f.hostUs;
      row.fwdDeviceBoundUs = f.deviceBoundUs;
      const b = await queued(() => binding.enqueueBackward(id, desc, bwdArgs));
      row.enqueueBwdHostUs = b.hostUs;
      row.bwdDeviceBoundUs = b.deviceBoundUs;
      // The backend's calls: checks, outputs from the pool, enqueue (no wait in between).
      // (Their bodies run to the end synchronously; the outputs are disposed once the promises settle.)
      const fb = await queued(
        () =>
          backend.forward({ q, k, v }, p).then((r) => {
            cudaTensors.dispose(r.o);
            cudaTensors.dispose(r.lse);
          }),
        20,
      );
      row.backendFwdHostUs = fb.hostUs;
      const fwd = await backend.forward({ q, k, v }, p);
      const bb = await queued(
        () => backend.backward(fwd.saved, dO, p).then((g) => [g.dq, g.dk, g.dv].forEach(cudaTensors.dispose)),
        20,
      );
      row.backendBwdHostUs = bb.hostUs;
    } catch (e) {
      row.error = String(e?.message ?? e).slice(0, 300);
    }
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  await binding.synchronize(0);
}
