// On the GPU machine (node, CUDA addon, TE_NATIVE_ADDON set): the C families' own pointer checks, which
// now know DeviceTensor memory from te's allocation table and ask the driver only about other pointers,
// and the addon's DeviceTimer. Through the raw binding (the JS backends refuse host tensors before the
// C family is reached; scripts/gpu/cuda_runtime_check.mjs checks those): a host array as k is a clear
// error naming k, the next call with device memory runs; DeviceTimer errors before recording, after
// dispose, and times a queued call. Prints one line per check; exit status 1 when one fails.
//   node scripts/gpu/host_pointer_check.mjs BUNDLE_DIR
import path from "node:path";

const dir = path.resolve(process.argv[2] ?? ".gpu");
const core = await import(path.join(dir, "node_modules/@te/core/dist/index.js"));
const native = await import(path.join(dir, "node_modules/@te/native/dist/index.js"));
const { makeParams } = core;
const { nativeDesc, loadBinding } = native;
const binding = loadBinding();
let failed = 0;
const report = (name, ok, detail) => {
  if (!ok) failed++;
  console.log(`${ok ? "PASS" : "FAIL"} ${name}: ${detail}`);
};
const expectThrow = (name, f, pattern) => {
  try {
    f();
    report(name, false, "no error");
  } catch (e) {
    report(name, pattern.test(e.message), `${e.code ?? ""} ${e.message}`);
  }
};

const p = makeParams({ b: 2, h: 4, d: 64, sq: 128, dtype: "bf16", device: "cuda" });
const n = 2 * 128 * 4 * 64;
const view = (data) => ({ data, offset: 0, b: 128 * 4 * 64, s: 4 * 64, h: 64, c: 1 });
const dev = () => new binding.DeviceTensor(n * 2, 0);
const [q, k, v, o] = [dev(), dev(), dev(), dev()];
for (const t of [q, k, v]) t.zero();
const lse = new binding.DeviceTensor(2 * 4 * 128 * 4, 0);
const args = (kData) => ({ q: view(q), k: view(kData), v: view(v), o: view(o), lse });
for (const backend of ["cuda.flash", "cuda.cudnn"]) {
  if (!binding.backends().split(",").includes(backend)) continue;
  expectThrow(
    `${backend} host array as k`,
    () => binding.enqueueForward(backend, nativeDesc(p), args(new Uint16Array(n))),
    /k: device memory expected/,
  );
  try {
    binding.enqueueForward(backend, nativeDesc(p), args(k));
    await binding.synchronize(0);
    report(`${backend} next call with device memory`, true, "ran");
  } catch (e) {
    report(`${backend} next call with device memory`, false, e.message);
  }
  const disposed = dev();
  disposed.dispose();
  expectThrow(
    `${backend} disposed k`,
    () => binding.enqueueForward(backend, nativeDesc(p), args(disposed)),
    /disposed/,
  );
}

const timer = new binding.DeviceTimer(0);
expectThrow("DeviceTimer elapsedMs before recording", () => timer.elapsedMs(), /recorded/);
timer.start();
binding.enqueueForward("cuda.flash", nativeDesc(p), args(k));
timer.stop();
await binding.synchronize(0);
const ms = timer.elapsedMs();
report("DeviceTimer times a queued forward", ms > 0 && ms < 100, `${ms} ms`);
timer.dispose();
expectThrow("DeviceTimer after dispose", () => timer.elapsedMs(), /disposed/);
expectThrow("DeviceTimer on a device that does not exist", () => new binding.DeviceTimer(99), /device/);
for (const t of [q, k, v, o, lse]) t.dispose();
console.log(failed === 0 ? "all passed" : `${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
