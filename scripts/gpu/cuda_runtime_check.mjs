// On the GPU machine (node, addon built with CUDA, TE_NATIVE_ADDON set): provokes each GPU-path error
// of the cuda.* backends (host tensor, disposed tensor, a device that does not exist, an allocation
// beyond free memory, a call whose memory does not fit) and checks after each that the error is clear
// and that a correct call then runs and agrees with cuda.unfused. Also times pooled allocation.
//   node scripts/gpu/cuda_runtime_check.mjs [bundle dir with node_modules/@te/{core,native}] > log
import path from "node:path";

const dir = path.resolve(process.argv[2] ?? ".gpu-rt");
const core = await import(path.join(dir, "node_modules/@te/core/dist/index.js"));
const native = await import(path.join(dir, "node_modules/@te/native/dist/index.js"));
const { makeParams, fromFloat64, toFloat64, getBackend } = core;
const { cudaTensors, allocateTensor, deviceInfo } = native;

let failures = 0;
const report = (ok, what, detail = "") => {
  if (!ok) failures++;
  console.log(`${ok ? "PASS" : "FAIL"} ${what}${detail ? `: ${detail}` : ""}`);
};
const gib = (n) => `${(n / 2 ** 30).toFixed(2)} GiB`;
const freeBytes = () => deviceInfo().devices[0].freeMemory;

const flash = getBackend("cuda.flash");
const unfused = getBackend("cuda.unfused");
const p = makeParams({ b: 2, h: 8, d: 64, sq: 256, dtype: "bf16", device: "cuda", maskType: "causal" });
const shape = [p.b, p.sq, p.h, p.d];
const random = (s) => {
  const x = new Float64Array(s.reduce((a, b) => a * b, 1));
  for (let i = 0; i < x.length; i++) x[i] = Math.random() * 2 - 1;
  return fromFloat64("bf16", s, x);
};
const hostQ = random(shape);
const [q, k, v, dO] = await Promise.all(
  [hostQ, random(shape), random(shape), random(shape)].map((t) => cudaTensors.fromHost(t)),
);

/** A correct forward+backward on cuda.flash, checked against cuda.unfused (no NaN, close in bf16). */
async function correctCall(after) {
  try {
    const a = await flash.forward({ q, k, v }, p);
    const ga = await flash.backward(a.saved, dO, p);
    const b = await unfused.forward({ q, k, v }, p);
    const gb = await unfused.backward(b.saved, dO, p);
    await cudaTensors.synchronize();
    let worst = 0;
    for (const [x, y] of [
      [a.o, b.o],
      [ga.dq, gb.dq],
      [ga.dv, gb.dv],
    ]) {
      const xs = toFloat64(await cudaTensors.toHost(x));
      const ys = toFloat64(await cudaTensors.toHost(y));
      for (let i = 0; i < xs.length; i++) {
        const e = Math.abs(xs[i] - ys[i]);
        worst = Number.isNaN(e) ? Number.POSITIVE_INFINITY : Math.max(worst, e);
      }
    }
    for (const t of [a.o, a.lse, ga.dq, ga.dk, ga.dv, b.o, b.lse, gb.dq, gb.dk, gb.dv])
      cudaTensors.dispose(t);
    report(
      worst < 0.05,
      `correct call after ${after}`,
      `max |flash - unfused| over o, dq, dv = ${worst.toExponential(2)}`,
    );
  } catch (e) {
    report(false, `correct call after ${after}`, `${e.code} ${e.message}`);
  }
}

/** Runs `call`, which must throw an error satisfying `expect`; prints its code and message. */
async function provoke(what, call, expect) {
  try {
    await call();
    report(false, what, "no error");
  } catch (e) {
    report(expect(e), what, `${e.name} ${e.code}: ${e.message}`);
  }
  await correctCall(what);
}

const info = deviceInfo();
console.log(
  `device ${info.devices[0].name} sm_${info.devices[0].arch}, free ${gib(freeBytes())} of ${gib(info.devices[0].totalMemory)}`,
);
await correctCall("start");

await provoke(
  "host tensor as k",
  () => flash.forward({ q, k: hostQ, v }, p),
  (e) => e.code === "TE_INVALID_ARGUMENT" && e.argument === "k" && /a CUDA tensor/.test(e.message),
);

const gone = await cudaTensors.fromHost(hostQ);
cudaTensors.dispose(gone);
await provoke(
  "disposed tensor as v",
  () => flash.forward({ q, k, v: gone }, p),
  (e) => e.argument === "v" && /disposed/.test(e.message),
);

await provoke(
  "tensor on device 1 (one GPU here)",
  () => allocateTensor("bf16", shape, 1),
  (e) => e.code === "TE_ERR_INVALID_ARGUMENT" && /device/.test(e.message),
);

const tooMuch = freeBytes() + 2 ** 32;
await provoke(
  `allocation of free + 4 GiB (${gib(tooMuch)})`,
  () => allocateTensor("fp32", [tooMuch / 4]),
  (e) =>
    e.code === "TE_ERR_OUT_OF_MEMORY" && new RegExp(`${tooMuch}`).test(e.message) && /free/.test(e.message),
);
// The failed attempt must leave no memory mapped in the pool.
report(freeBytes() > tooMuch - 2 ** 33, "free memory after the failed allocation", gib(freeBytes()));

// A call whose outputs and workspace cannot fit: cuda.unfused keeps fp32 score buffers of
// b*h*sq*skv floats, here 16 * 16 * 32768^2 * 4 bytes = 1 TiB.
const hugeP = makeParams({ b: 16, h: 16, d: 64, sq: 32768, dtype: "bf16", device: "cuda" });
const hugeShape = [16, 32768, 16, 64];
const hq = allocateTensor("bf16", hugeShape);
await provoke(
  "cuda.unfused call needing a 1 TiB workspace",
  () => unfused.forward({ q: hq, k: hq, v: hq }, hugeP),
  (e) =>
    ["TE_ERR_OUT_OF_MEMORY", "TE_ERR_UNSUPPORTED", "TE_BACKEND_UNSUPPORTED"].includes(e.code) ||
    /memory|support/.test(e.message),
);
cudaTensors.dispose(hq);

// Memory held elsewhere: leave ~96 MiB free, then a backward whose outputs (3 x 16 MiB) and fp32 dq
// accumulator workspace (32 MiB) cannot all fit once the forward's outputs are there.
const bp = makeParams({ b: 4, h: 16, d: 128, sq: 1024, dtype: "bf16", device: "cuda" });
const bshape = [4, 1024, 16, 128];
const [bq, bk, bv, bdO] = await Promise.all([0, 1, 2, 3].map(() => cudaTensors.fromHost(random(bshape))));
const fwd = await flash.forward({ q: bq, k: bk, v: bv }, bp);
await cudaTensors.synchronize();
// One allocation of (free - 40 MiB) has left ~2 GiB free on the H100 and the H200 (the pool cannot hand
// out the driver's last blocks as one piece): fill in pieces, halving a piece the driver refuses.
const reserve = 40 * 2 ** 20;
const hogs = [];
try {
  for (let piece = freeBytes() - reserve; piece >= 4 * 2 ** 20 && hogs.length < 64; ) {
    try {
      hogs.push(allocateTensor("fp32", [Math.floor(piece / 4)]));
      piece = freeBytes() - reserve;
    } catch (e) {
      if (e.code !== "TE_ERR_OUT_OF_MEMORY") throw e;
      piece = Math.floor(piece / 2);
    }
  }
  if (hogs.length === 0)
    throw Object.assign(new Error(`only ${gib(freeBytes())} free before the hog`), { code: "none" });
  await provoke(
    `cuda.flash backward with ${gib(freeBytes())} left free (${hogs.length} hog allocations)`,
    () => flash.backward(fwd.saved, bdO, bp),
    (e) => e.code === "TE_ERR_OUT_OF_MEMORY",
  );
} catch (e) {
  report(false, "hog allocation", `${e.code}: ${e.message}`);
} finally {
  for (const h of hogs) cudaTensors.dispose(h);
}
for (const t of [fwd.o, fwd.lse, bq, bk, bv, bdO]) cudaTensors.dispose(t);
await correctCall("memory released again");

// The pool keeps freed blocks: allocating and freeing 256 MiB should cost microseconds, not a cudaMalloc.
await cudaTensors.synchronize();
const n = 200;
const t0 = performance.now();
for (let i = 0; i < n; i++) cudaTensors.dispose(allocateTensor("bf16", [128 * 2 ** 20]));
await cudaTensors.synchronize();
console.log(
  `pooled allocate+dispose of 256 MiB: ${(((performance.now() - t0) / n) * 1000).toFixed(1)} us each (${n} times)`,
);

console.log(failures === 0 ? "cuda_runtime_check: all passed" : `cuda_runtime_check: ${failures} FAILED`);
process.exit(failures === 0 ? 0 : 1);
