// On the GPU machine (node, CUDA addon with the FP8 entry points, TE_NATIVE_ADDON set): FP8 attention
// through DotProductAttention on cuda.cudnn (sub-backend 2) with TE's DelayedScaling recipe, end to end.
// - fp8_dpa, HYBRID: three training steps (the module updates the scales after each pass); each step's
//   O, dQ, dK, dV against the F16 result of the same call (cuda.cudnn in bf16, no recipe) with the
//   metric and tolerance of core's FP8_ATTENTION_TOLERANCE, and against the float64 FP8 emulation
//   (fp8ReferenceForward/Backward, at step 2) run from the same recipe state, which should agree more
//   tightly.
// - NVTE_FP8_DPA_BWD=0: gradients equal the F16 backward's (bf16 tolerance).
// - fp8_mha: FP8 tensors in and out (the module's state quantises them).
// - refusals: FP8 training with d=64 (backward needs d = 128 on sm90) names the rule; inference runs.
// - recipe kernels: the device-resident DelayedScaling state (native/cudnn/fp8_recipe_state.cu) against
//   core's host recipe over many steps (amax 0, NaN, inf and tiny amaxes included; "max" and
//   "most_recent"; integer and fractional margins; histories of 1024, 5 and 300 entries): after every
//   record and update the downloaded state must equal core's bit for bit, and the scaling block a
//   call gets (prepare) must be core's scales rounded to fp32 (kernelScaleOfS for S, q's for k and v).
// The selection log (NVTE_DEBUG=1) shows the sub-backend.
//   node fp8_node_check.mjs BUNDLE_DIR > log   (BUNDLE_DIR has node_modules/@te/{core,native})
import path from "node:path";

process.env.NVTE_DEBUG = "1";
process.env.NVTE_DEBUG_LEVEL = "1";
const dir = path.resolve(process.argv[2] ?? ".");
const core = await import(path.join(dir, "node_modules/@te/core/dist/index.js"));
const native = await import(path.join(dir, "node_modules/@te/native/dist/index.js"));
const {
  DotProductAttention,
  delayedScaling,
  fromFloat64,
  toFloat64,
  quantizeFp8,
  fp8ReferenceForward,
  fp8ReferenceBackward,
  FP8_ATTENTION_TOLERANCE,
  fp8KvGradientTolerance,
  readFp8Meta,
  createFp8Meta,
  recordSharedAmax,
  updateAttentionFp8Scales,
  kernelScaleOfS,
  FP8_FORWARD_TENSORS,
  FP8_BACKWARD_TENSORS,
} = core;
const { cudaTensors, loadBinding, DeviceFp8State, FP8_TENSORS, FP8_META_FLOATS, fp8SlotOf } = native;

let failures = 0;
const report = (ok, what, detail = "") => {
  if (!ok) failures++;
  console.log(`${ok ? "PASS" : "FAIL"} ${what}${detail ? `: ${detail}` : ""}`);
};

/** The emulation's metric: smallest t with |a - r| <= t + t|r| (NaN: infinity); and ||a - r|| / ||r||. */
function errorOf(a, r) {
  let t = 0;
  let num = 0;
  let den = 0;
  for (let i = 0; i < r.length; i++) {
    const d = Math.abs(a[i] - r[i]);
    if (!Number.isFinite(d)) return { t: Number.POSITIVE_INFINITY, rel: Number.POSITIVE_INFINITY };
    t = Math.max(t, d / (1 + Math.abs(r[i])));
    num += d * d;
    den += r[i] * r[i];
  }
  return { t, rel: Math.sqrt(num / Math.max(den, 1e-30)) };
}
const fmt = (e) => `t ${e.t.toFixed(4)} rel ${e.rel.toExponential(2)}`;

let seed = 20261203;
/** Uniform values in [-1, 1) as BF16: the conformance cases' inputs, on which the tolerance was measured. */
function random(shape, scale = 1) {
  const n = shape.reduce((a, b) => a * b, 1);
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    x[i] = scale * ((seed / 2 ** 32) * 2 - 1);
  }
  return fromFloat64("bf16", shape, x);
}
const host = async (t) => toFloat64(await cudaTensors.toHost(t));

/** core's documented FP8 tolerance: o forward, dq backward, dk/dv the bound of the call's GQA group. */
const withinFp8Tolerance = (e, group) =>
  e.o.t <= FP8_ATTENTION_TOLERANCE.forward.atol &&
  e.dq.t <= FP8_ATTENTION_TOLERANCE.backward.atol &&
  ["dk", "dv"].every((n) => e[n].t <= fp8KvGradientTolerance(group));

async function checkDpa(cfg) {
  const { b, h, hg, d, s, mask } = cfg;
  const qShape = [b, s, h, d];
  const kvShape = [b, s, hg, d];
  const hq = random(qShape);
  const hk = random(kvShape);
  const hv = random(kvShape);
  const hdo = random(qShape);
  const [q, k, v, dO] = await Promise.all([hq, hk, hv, hdo].map((t) => cudaTensors.fromHost(t)));
  const module = (fp8Recipe) =>
    new DotProductAttention({
      numAttentionHeads: h,
      kvChannels: d,
      numGqaGroups: hg,
      qkvFormat: "bshd",
      attnMaskType: mask,
      fp8Recipe,
      env: { ...process.env, NVTE_FP8_DPA_BWD: "1" },
    });
  const opts = { tensors: cudaTensors };
  const f16 = await module(null).forward(q, k, v, opts);
  const g16 = await f16.backward(dO);
  const ref = {
    o: await host(f16.output),
    dq: await host(g16.dq),
    dk: await host(g16.dk),
    dv: await host(g16.dv),
  };
  const recipe = delayedScaling({ fp8Dpa: true });
  const fp8 = module(recipe);
  for (let step = 1; step <= 3; step++) {
    // The module's state lives on the device: read it back before copying it for the emulation.
    const before = structuredClone(readFp8Meta(fp8.fp8Meta));
    const r = await fp8.forward(q, k, v, opts);
    const g = await r.backward(dO);
    const got = { o: await host(r.output), dq: await host(g.dq), dk: await host(g.dk), dv: await host(g.dv) };
    const e = Object.fromEntries(Object.keys(ref).map((n) => [n, errorOf(got[n], ref[n])]));
    // The float64 emulation costs seconds: it runs at step 2 (scales from the first step's amaxes).
    if (!cfg.emulate || step !== 2) {
      const ok = r.backend === "cuda.cudnn" && withinFp8Tolerance(e, h / hg);
      report(
        ok,
        `${cfg.name} fp8_dpa step ${step} vs F16`,
        Object.entries(e)
          .map(([n, x]) => `${n} ${fmt(x)}`)
          .join(", "),
      );
      for (const t of [r.output, r.lse, g.dq, g.dk, g.dv]) cudaTensors.dispose(t);
      continue;
    }
    // The emulation from the state this step started with.
    const emuState = structuredClone(before);
    const emuParams = { ...r.params, device: "host" };
    const ef = fp8ReferenceForward({ q: hq, k: hk, v: hv }, emuParams, emuState);
    const eg = await fp8ReferenceBackward(ef.saved, hdo, emuParams, emuState);
    const emu = { o: toFloat64(ef.o), dq: toFloat64(eg.dq), dk: toFloat64(eg.dk), dv: toFloat64(eg.dv) };
    const ee = Object.fromEntries(Object.keys(ref).map((n) => [n, errorOf(got[n], emu[n])]));
    const emuVsF16 = Object.fromEntries(Object.keys(ref).map((n) => [n, errorOf(emu[n], ref[n])]));
    const ok = r.backend === "cuda.cudnn" && withinFp8Tolerance(e, h / hg);
    report(
      ok,
      `${cfg.name} fp8_dpa step ${step} vs F16`,
      Object.entries(e)
        .map(([n, x]) => `${n} ${fmt(x)}`)
        .join(", "),
    );
    console.log(
      `     vs emulation: ${Object.entries(ee)
        .map(([n, x]) => `${n} ${fmt(x)}`)
        .join(", ")} | emulation vs F16: ${Object.entries(emuVsF16)
        .map(([n, x]) => `${n} ${fmt(x)}`)
        .join(", ")}`,
    );
    const m = readFp8Meta(fp8.fp8Meta);
    console.log(
      `     state after step: scale q ${m.q.scale.toFixed(2)} s ${m.s.scale.toFixed(1)} o ${m.o.scale.toFixed(2)} dO ${m.dO.scale.toFixed(1)} dP ${m.dP.scale.toExponential(2)} dQ ${m.dQ.scale.toFixed(1)}; amax hist[1] q ${m.q.amaxHistory[1].toFixed(3)} s ${m.s.amaxHistory[1].toFixed(3)} o ${m.o.amaxHistory[1].toFixed(3)} dP ${m.dP.amaxHistory[1].toExponential(2)} dQKV ${m.dQ.amaxHistory[1].toFixed(3)}`,
    );
    for (const t of [r.output, r.lse, g.dq, g.dk, g.dv]) cudaTensors.dispose(t);
  }
  // NVTE_FP8_DPA_BWD=0: FP8 forward, F16 backward.
  const f16bwd = new DotProductAttention({
    numAttentionHeads: h,
    kvChannels: d,
    numGqaGroups: hg,
    qkvFormat: "bshd",
    attnMaskType: mask,
    fp8Recipe: recipe,
    env: { ...process.env, NVTE_FP8_DPA_BWD: "0" },
  });
  const r0 = await f16bwd.forward(q, k, v, opts);
  const g0 = await r0.backward(dO);
  const e0 = ["dq", "dk", "dv"].map(async (n) => [n, errorOf(await host(g0[n]), ref[n])]);
  const e0s = Object.fromEntries(await Promise.all(e0));
  report(
    r0.params.fp8?.backward === false && Object.values(e0s).every((x) => x.t <= tol16(x)),
    `${cfg.name} NVTE_FP8_DPA_BWD=0 gradients vs F16 (forward in FP8, O dequantised)`,
    Object.entries(e0s)
      .map(([n, x]) => `${n} ${fmt(x)}`)
      .join(", "),
  );
  // fp8_mha: FP8 q, k, v quantised with the module's current QKV scale.
  const mha = module(delayedScaling({ fp8Dpa: true, fp8Mha: true }));
  const st = mha.fp8Meta; // host-owned until its first call uploads it, so these edits are taken
  const dpaState = readFp8Meta(fp8.fp8Meta);
  st.q.scale = st.k.scale = st.v.scale = dpaState.q.scale;
  st.q.scaleInv = st.k.scaleInv = st.v.scaleInv = dpaState.q.scaleInv;
  const [q8, k8, v8] = await Promise.all(
    [hq, hk, hv].map((t) => cudaTensors.fromHost(quantizeFp8(t, "fp8e4m3", st.q.scale))),
  );
  try {
    const rm = await mha.forward(q8, k8, v8, opts);
    report(
      rm.output.dtype === "fp8e4m3" && rm.backend === "cuda.cudnn",
      `${cfg.name} fp8_mha forward: O in ${rm.output.dtype} on ${rm.backend}`,
    );
  } catch (e) {
    report(false, `${cfg.name} fp8_mha forward`, `${e.code} ${e.message}`);
  }
}
// The F16 backward after an FP8 forward sees O rounded through FP8: a looser bound than bf16 alone.
const tol16 = () => FP8_ATTENTION_TOLERANCE.backward.atol;

async function checkRefusals() {
  const x = await cudaTensors.fromHost(random([1, 128, 2, 64]));
  const m = new DotProductAttention({
    numAttentionHeads: 2,
    kvChannels: 64,
    qkvFormat: "bshd",
    attnMaskType: "causal",
    fp8Recipe: delayedScaling({ fp8Dpa: true }),
    env: { ...process.env, NVTE_FLASH_ATTN: "0", NVTE_UNFUSED_ATTN: "0" },
  });
  try {
    await m.forward(x, x, x, { tensors: cudaTensors });
    report(false, "d=64 FP8 training is refused", "it ran");
  } catch (e) {
    report(
      /d = dv = 128|d=64/.test(e.message),
      "d=64 FP8 training is refused with a reason",
      e.message.slice(0, 300),
    );
  }
  m.eval();
  try {
    const r = await m.forward(x, x, x, { tensors: cudaTensors });
    report(r.backend === "cuda.cudnn", `d=64 FP8 inference runs on ${r.backend}`);
  } catch (e) {
    report(false, "d=64 FP8 inference runs", `${e.code} ${e.message.slice(0, 300)}`);
  }
}

/** Whether two host records hold the same values (Object.is: NaN equals NaN, bits of doubles). */
function stateDiffs(a, b) {
  const out = [];
  for (const t of FP8_TENSORS) {
    if (!Object.is(a[t].scale, b[t].scale)) out.push(`${t}.scale ${a[t].scale} vs ${b[t].scale}`);
    if (!Object.is(a[t].scaleInv, b[t].scaleInv))
      out.push(`${t}.scaleInv ${a[t].scaleInv} vs ${b[t].scaleInv}`);
    for (let i = 0; i < a[t].amaxHistory.length; i++)
      if (!Object.is(a[t].amaxHistory[i], b[t].amaxHistory[i]))
        out.push(`${t}.amaxHistory[${i}] ${a[t].amaxHistory[i]} vs ${b[t].amaxHistory[i]}`);
  }
  return out;
}

/** The scaling block core's values give a call (the layout fp8_attention.h reads), fp32-rounded. */
function expectedBlock(host, pass, into) {
  const shared = { k: "q", v: "q", dK: "dQ", dV: "dQ" };
  for (const t of pass === "forward" ? FP8_FORWARD_TENSORS : FP8_BACKWARD_TENSORS) {
    const i = fp8SlotOf(t);
    const from = host[shared[t] ?? t];
    const scale = t === "s" ? kernelScaleOfS(from) : from.scale;
    into[3 * i] = scale;
    into[3 * i + 1] = t === "s" ? 1 / scale : from.scaleInv;
    into[3 * i + 2] = 0;
  }
  return into;
}

async function checkRecipeKernels() {
  const binding = loadBinding();
  const recipes = [
    { name: "HYBRID max margin 0 len 1024", r: delayedScaling({ fp8Dpa: true }) },
    {
      name: "E4M3 most_recent margin 1 len 5",
      r: delayedScaling({
        fp8Dpa: true,
        fp8Format: "E4M3",
        amaxComputeAlgo: "most_recent",
        margin: 1,
        amaxHistoryLen: 5,
      }),
    },
    {
      name: "E5M2 max margin 0.5 len 300",
      r: delayedScaling({ fp8Dpa: true, fp8Format: "E5M2", margin: 0.5, amaxHistoryLen: 300 }),
    },
  ];
  let rnd = 7;
  const next = () => {
    rnd = (Math.imul(rnd, 1664525) + 1013904223) >>> 0;
    return rnd / 2 ** 32;
  };
  // Amaxes as the kernels report them (fp32): mostly ordinary, with the recipe's edge cases at fixed steps.
  const amaxAt = (step, i) => {
    if (step === 3) return 0; // a step with nothing recorded: the scale is kept (most_recent) or the history max used
    if (step === 5 && i === 1) return Number.NaN;
    if (step === 7 && i === 2) return Number.POSITIVE_INFINITY;
    if (step === 9 && i === 0) return 1e-40; // a denormal amax: fp8_max / amax overflows fp32, not double
    return Math.fround((next() * 2 - 0.5) * 10 ** Math.floor(next() * 6 - 3)); // negatives too (|amax| recorded)
  };
  for (const { name, r } of recipes) {
    const host = createFp8Meta(r);
    host.q.scale = 3; // a state that does not start at 1
    host.q.scaleInv = 1 / 3;
    const device = new DeviceFp8State(binding, "fp8_node_check", host);
    const block = new binding.DeviceTensor(4 * FP8_META_FLOATS, 0);
    const problems = [];
    try {
      for (let step = 0; step < 14 && problems.length === 0; step++) {
        for (const pass of ["forward", "backward"]) {
          // prepare: the block a call gets from the state
          device.prepare(block, pass);
          const got = block.download(new Float32Array(FP8_META_FLOATS));
          const want = expectedBlock(host, pass, got.slice());
          for (let i = 0; i < FP8_META_FLOATS; i++)
            if (!Object.is(got[i], want[i]))
              problems.push(`step ${step} ${pass} prepare slot ${i}: ${got[i]} vs ${want[i]}`);
          // record: the amaxes a call reported (fp8_mha-like subsets on odd steps)
          const names =
            pass === "forward"
              ? step % 2
                ? ["s", "o"]
                : ["q", "k", "s", "o"]
              : step % 2
                ? ["dP", "dQ", "dV"]
                : ["dO", "dP", "dQ", "dK", "dV"];
          const m = new Float32Array(FP8_META_FLOATS);
          const amaxes = {};
          names.forEach((t, i) => {
            m[3 * fp8SlotOf(t) + 2] = amaxAt(step, i);
            amaxes[t] = m[3 * fp8SlotOf(t) + 2];
          });
          // Slots of tensors not recorded hold values the record must ignore.
          for (const t of FP8_TENSORS) if (!names.includes(t)) m[3 * fp8SlotOf(t) + 2] = 12345;
          block.upload(m);
          device.record(block, names);
          recordSharedAmax(host, amaxes);
          device.update(r, pass);
          updateAttentionFp8Scales(host, r, pass);
          const dev = createFp8Meta(r);
          device.download(dev);
          for (const d of stateDiffs(dev, host)) problems.push(`step ${step} ${pass}: ${d}`);
        }
      }
    } catch (e) {
      problems.push(`${e.code ?? ""} ${e.message}`);
    } finally {
      block.dispose();
      device.dispose();
    }
    report(
      problems.length === 0,
      `recipe kernels equal core's recipe (${name}, 14 steps of record + update, prepare)`,
      problems.slice(0, 4).join("; "),
    );
  }
}

const configs = [
  { name: "causal_b2h4s256d128", b: 2, h: 4, hg: 4, d: 128, s: 256, mask: "causal", emulate: true },
  { name: "gqa_nomask_b2h8g2s512d128", b: 2, h: 8, hg: 2, d: 128, s: 512, mask: "no_mask", emulate: false },
];
for (const c of configs) {
  try {
    await checkDpa(c);
  } catch (e) {
    report(false, c.name, `${e.name} ${e.code ?? ""} ${e.message}`);
  }
}
await checkRefusals();
try {
  await checkRecipeKernels();
} catch (e) {
  report(false, "recipe kernels", `${e.name} ${e.code ?? ""} ${e.message}`);
}
console.log(`${failures} failure(s)`);
process.exit(failures === 0 ? 0 : 1);
