// Prints the --tile-variants JSON of one sweep of the round-B job: node variants.mjs fwd64|fwd128|bwd64|bwd128.
// Prefetch variants come last: SwiftShader's compiler never finished them (memory grew past 8 GB), so if
// NVIDIA's also takes long the sweep's time limit cuts only them.
const cl = { TE_WEBGPU_FLASH_CLASS_LOOPS: "1" };
const pf = { TE_WEBGPU_FLASH_PREFETCH: "1" };
const lb = (n) => ({ name: `lb${n}`, env: { TE_WEBGPU_FLASH_LOAD_BATCH: String(n) } });
const f = (bq, bk, tm, sharedKv = false) => ({
  name: `f${bq}x${bk}m${tm}${sharedKv ? "kv" : ""}`,
  tiles: { forward: { bq, bk, tm, sharedKv } },
});
const b = (r, c, tm) => ({ name: `b${r}x${c}m${tm}`, tiles: { dq: { r, c, tm }, dkdv: { r, c, tm } } });
const withCl = (v) => ({ ...v, name: `${v.name}+cl`, env: { ...v.env, ...cl } });
const withPf = (v) => ({ ...v, name: `${v.name}+pf`, env: { ...v.env, ...pf } });
const plain = { name: "default" };
const sets = {
  fwd64: [
    { name: "cl", env: cl },
    lb(32),
    lb(64),
    f(64, 32, 2),
    f(64, 32, 1),
    f(64, 16, 2),
    f(128, 16, 4),
    f(128, 16, 2),
    f(32, 32, 1),
    withPf(plain),
    withCl(withPf(plain)),
    withPf(f(64, 32, 2)),
    withPf(f(64, 32, 1)),
    withPf(f(128, 16, 2)),
    withCl(withPf(f(64, 32, 2))),
    withCl(withPf(f(64, 32, 1))),
    withCl(withPf(f(128, 16, 2))),
  ],
  fwd128: [
    { name: "cl", env: cl },
    lb(32),
    lb(64),
    f(32, 16, 1),
    withCl(f(32, 16, 1)),
    f(64, 16, 2, true),
    withCl(f(64, 16, 2, true)),
    f(64, 16, 1, true),
    f(64, 16, 4, true),
    f(32, 32, 2, true),
    f(32, 32, 1, true),
    withPf(plain),
    withCl(withPf(plain)),
    withPf(f(32, 16, 1)),
    withCl(withPf(f(32, 16, 1))),
  ],
  bwd64: [
    { name: "cl", env: cl },
    lb(32),
    lb(64),
    b(64, 16, 2),
    b(64, 16, 1),
    b(32, 32, 1),
    b(32, 16, 1),
    withCl(b(64, 16, 2)),
  ],
  bwd128: [{ name: "cl", env: cl }, lb(32), lb(64), b(16, 16, 2), withCl(b(16, 16, 2))],
};
console.log(JSON.stringify(sets[process.argv[2]]));
