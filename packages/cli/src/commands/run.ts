import {
  type AttentionOutput,
  BIAS_TYPES,
  CONFORMANCE_TOLERANCES,
  type ConformanceDType,
  caseDims,
  compareValues,
  DotProductAttention,
  fromFloat64,
  fromFormat,
  generateCaseValues,
  type HostCall,
  type HostTensor,
  hostCall,
  hostTensors,
  MASK_TYPES,
  parseCase,
  processEnv,
  referenceBackend,
  setLogSink,
  type TensorBridge,
  type TensorCheck,
  toFloat64,
} from "@te/core";
import { type Command, oneOf, parseCommandLine, positiveInteger, UsageError } from "../command.js";
import { configByName, RUN_CONFIGS } from "../configs.js";
import { backendById, loadAllPackages } from "../load-backends.js";

const DTYPES = ["fp32", "fp16", "bf16"] as const;

const usage = `te run [--config NAME] [--dtype fp32|fp16|bf16] [--backend ID] [--b N] [--h N] [--hg N] [--d N]
       [--sq N] [--skv N] [--mask TYPE] [--bias TYPE] [--seed N] [--check-batches N]
  Runs attention forward and backward through the backend selection picks for host tensors (or --backend ID,
  on that backend's tensors),
  prints the selection (NVTE_DEBUG=1 NVTE_DEBUG_LEVEL=2 unless set), and checks o, lse, dq, dk, dv against
  the float64 reference with the dtype's tolerance. Exit code 1 on a mismatch.
  --config       one of ${RUN_CONFIGS.map((c) => c.name).join(", ")} (default test_0); the other options override it
  --check-batches  check only the first N batch entries against the reference (it is slow on long sequences)`;

/** Inputs of a call as fp64 tensors, so the reference's outputs are not rounded to the run's dtype. */
function inFloat64(call: HostCall): HostCall {
  const f64 = (t: HostTensor) => fromFloat64("fp64", t.shape, toFloat64(t));
  const i = call.inputs;
  return {
    params: call.params,
    dO: f64(call.dO),
    inputs: { ...i, q: f64(i.q), k: f64(i.k), v: f64(i.v), bias: i.bias && f64(i.bias) },
  };
}

const ms = (t0: number) => `${(performance.now() - t0).toFixed(0)} ms`;

export const runCommand: Command = {
  name: "run",
  summary: "attention forward + backward through the selected backend, checked against the reference",
  usage,
  async run(argv, io) {
    const { values } = parseCommandLine(
      argv,
      {
        config: { type: "string" },
        dtype: { type: "string" },
        backend: { type: "string" },
        b: { type: "string" },
        h: { type: "string" },
        hg: { type: "string" },
        d: { type: "string" },
        sq: { type: "string" },
        skv: { type: "string" },
        mask: { type: "string" },
        bias: { type: "string" },
        seed: { type: "string" },
        "check-batches": { type: "string" },
      },
      false,
    );
    const base = configByName(values.config ?? "test_0");
    if (!base)
      throw new UsageError(
        `--config: expected one of ${RUN_CONFIGS.map((c) => c.name).join(", ")}, got "${values.config}"`,
      );
    const dtype: ConformanceDType = oneOf("dtype", values.dtype, DTYPES) ?? "fp32";
    const h = positiveInteger("h", values.h) ?? base.h;
    const sq = positiveInteger("sq", values.sq) ?? base.sq;
    const caseJson = {
      name: base.name,
      seed: positiveInteger("seed", values.seed) ?? 1,
      b: positiveInteger("b", values.b) ?? base.b,
      h,
      hg: positiveInteger("hg", values.hg) ?? (values.h === undefined ? base.hg : h),
      d: positiveInteger("d", values.d) ?? base.d,
      sq,
      skv: positiveInteger("skv", values.skv) ?? (values.sq === undefined ? base.skv : sq),
      mask: oneOf("mask", values.mask, MASK_TYPES) ?? base.mask,
      bias: oneOf("bias", values.bias, BIAS_TYPES) ?? base.bias,
    };
    if (caseJson.h % caseJson.hg !== 0)
      throw new UsageError(`--hg: expected a divisor of h = ${caseJson.h}, got ${caseJson.hg}`);
    const checkBatches = Math.min(
      positiveInteger("check-batches", values["check-batches"]) ?? caseJson.b,
      caseJson.b,
    );
    const c = parseCase(caseJson);
    const describe = `b=${c.b} h=${c.h} hg=${c.hg} d=${c.d} sq=${c.sq} skv=${c.skv} ${c.mask} ${c.bias}`;

    await loadAllPackages();
    // A requested backend runs on its own kind of tensors (uploaded from host); otherwise host tensors.
    const requested = values.backend === undefined ? undefined : await backendById(values.backend);
    const bridge: TensorBridge<unknown> = requested?.tensors ?? hostTensors;
    io.out(`te run: ${c.name} (${describe}), ${dtype}, bshd, fwd+bwd on ${bridge.kind} tensors`);
    const call = hostCall(c, generateCaseValues(c, dtype), { dtype, device: bridge.kind, isTraining: true });

    const owned: unknown[] = [];
    const up = async (t: HostTensor) => {
      const x = await bridge.fromHost(t);
      owned.push(x);
      return x;
    };
    const i = call.inputs;
    const [q, k, v] = [await up(i.q), await up(i.k), await up(i.v)];
    const bias = i.bias && (await up(i.bias));
    // TE's module API: validation, selection (logged in TE's words) and the backend's forward/backward.
    const attention = new DotProductAttention({
      numAttentionHeads: c.h,
      kvChannels: [c.d, c.dv],
      numGqaGroups: c.hg,
      qkvFormat: "bshd",
      attnMaskType: c.mask,
      softmaxScale: c.softmaxScale,
    });
    const env = { NVTE_DEBUG: "1", NVTE_DEBUG_LEVEL: "2", ...processEnv() };
    const previousSink = setLogSink(io.out);
    let t0 = performance.now();
    let out: AttentionOutput<unknown>;
    try {
      out = await attention.forward(q, k, v, {
        tensors: bridge,
        cuSeqlensQ: i.cuSeqlensQ,
        cuSeqlensKv: i.cuSeqlensKv,
        attentionMask: i.attnMask,
        coreAttentionBiasType: c.bias,
        coreAttentionBias: bias,
        biasRequiresGrad: c.biasGrad,
        alibiSlopes: i.alibiSlopes,
        selection: { env, backends: requested ? [requested.id] : undefined },
      });
    } finally {
      setLogSink(previousSink);
    }
    const fwdTime = ms(t0);
    const backendId = out.backend;
    const dO = await up(call.dO);
    t0 = performance.now();
    const grads = await out.backward(dO);
    io.out(`${backendId}: forward ${fwdTime}, backward ${ms(t0)}`);
    const fwd = { o: out.output, lse: out.lse };
    const host = async (t: unknown) => {
      owned.push(t);
      return bridge.toHost(t);
    };
    const { qDims, kvDims } = caseDims(c);
    const got = {
      o: fromFormat(await host(fwd.o), "bshd", qDims(c.dv), "o"),
      lse: toFloat64(await host(fwd.lse)),
      dq: fromFormat(await host(grads.dq), "bshd", qDims(c.d), "dq"),
      dk: fromFormat(await host(grads.dk), "bshd", kvDims(c.d), "dk"),
      dv: fromFormat(await host(grads.dv), "bshd", kvDims(c.dv), "dv"),
    };
    for (const t of new Set(owned)) bridge.dispose(t);

    // The generator fills batch-first tensors in row-major order, so the case with b = checkBatches
    // has exactly the first checkBatches entries of the full inputs.
    const sub = parseCase({ ...caseJson, b: checkBatches });
    const refCall = inFloat64(
      hostCall(sub, generateCaseValues(sub, dtype), { dtype, device: "host", isTraining: true }),
    );
    t0 = performance.now();
    const refFwd = await referenceBackend.forward(refCall.inputs, refCall.params);
    const refGrads = await referenceBackend.backward(refFwd.saved, refCall.dO, refCall.params);
    const refTime = ms(t0);
    const { qDims: subQ, kvDims: subKv } = caseDims(sub);
    const want = {
      o: fromFormat(refFwd.o, "bshd", subQ(c.dv), "o"),
      lse: toFloat64(refFwd.lse),
      dq: fromFormat(refGrads.dq, "bshd", subQ(c.d), "dq"),
      dk: fromFormat(refGrads.dk, "bshd", subKv(c.d), "dk"),
      dv: fromFormat(refGrads.dv, "bshd", subKv(c.dv), "dv"),
    };
    const tol = CONFORMANCE_TOLERANCES[dtype];
    const trivial =
      backendId === referenceBackend.id ? " (the selected backend is the reference itself)" : "";
    io.out(
      `check against the float64 reference${trivial}: ${checkBatches}/${c.b} batch entries, atol=rtol=${tol.atol} (reference ${refTime})`,
    );
    const checks: TensorCheck[] = (Object.keys(want) as (keyof typeof want)[]).map((name) =>
      compareValues(name, got[name].subarray(0, want[name].length), want[name], tol),
    );
    for (const x of checks) {
      const bad = x.passed
        ? "ok"
        : `MISMATCH (${x.mismatches} of ${x.count}, first at ${x.firstMismatch?.index}: ${x.firstMismatch?.got} vs ${x.firstMismatch?.want})`;
      io.out(`  ${x.tensor.padEnd(4)} max abs error ${x.maxAbsError.toExponential(2)}  ${bad}`);
    }
    const passed = checks.every((x) => x.passed);
    io.out(passed ? `PASS ${c.name} on ${backendId}` : `FAIL ${c.name} on ${backendId}`);
    return passed ? 0 : 1;
  },
};
