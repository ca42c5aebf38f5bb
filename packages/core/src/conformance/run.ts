import type { AttentionBackend, SavedForBackward, SelectionContext } from "../backend.js";
import { processEnv } from "../env.js";
import { describeValue } from "../errors.js";
import type { QkvLayoutGroup } from "../layout.js";
import { referenceBackend } from "../reference/backend.js";
import { toFloat64 } from "../reference/host-values.js";
import type { Reason } from "../rules.js";
import { getCudaArch } from "../selection.js";
import type { HostTensor } from "../tensor.js";
import { CONFORMANCE_TOLERANCES, compareValues, type TensorCheck, type Tolerance } from "./compare.js";
import {
  type ConformanceDType,
  caseDims,
  fromFormat,
  generateCaseValues,
  hostCall,
  layoutGroupProblem,
} from "./feed.js";
import { type CaseOnDisk, listCases, readExpected } from "./files.js";

export interface CaseResult {
  readonly name: string;
  readonly status: "pass" | "fail" | "skip";
  /** Why the backend does not run the case (status "skip"). */
  readonly reasons: readonly Reason[];
  /** The error a backend threw, or what was missing (status "fail"). */
  readonly error?: string;
  /** One entry per compared tensor, in the order o, lse, dq, dk, dv, dbias, dsoftmax_offset. */
  readonly checks: readonly TensorCheck[];
  readonly ms: number;
}

export interface ConformanceOptions<T> {
  /** A directory whose sub-folders are cases (case.json + expected .npy files). */
  readonly dir: string;
  readonly backend: AttentionBackend<T>;
  readonly dtype?: ConformanceDType;
  /** Only cases whose name contains this string (or passes this test). */
  readonly filter?: string | ((name: string) => boolean);
  /** Also run backward and compare gradients (default true). */
  readonly gradients?: boolean;
  /** Called after each case, in order (for progress output). */
  readonly onResult?: (result: CaseResult) => void;
  /** The selection context explain is asked with; default: the recorded CUDA arch and process env. */
  readonly context?: SelectionContext;
  /** Overrides the dtype's tolerance. */
  readonly tolerance?: Tolerance;
  /**
   * Feed q/k/v as views of packed buffers of this layout group (default hd_hd_hd: separate tensors);
   * cases that cannot be packed so (GQA, dv != d, ...) are skipped with the reason.
   */
  readonly layoutGroup?: QkvLayoutGroup;
  /**
   * thd cases only: feed this many NaN-filled padding rows after each sequence, with cu_seqlens_padded
   * (params.paddedThd); the outputs are read at the padded offsets.
   */
  readonly thdGap?: number;
}

export interface ConformanceSummary {
  readonly backend: string;
  readonly dtype: ConformanceDType;
  readonly results: readonly CaseResult[];
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
}

/**
 * Runs the cases of a directory against a backend through its TensorBridge: each case is generated
 * from its seed, fed in its format, checked with `explain` (a refusal is a skip with the reasons),
 * then forward (o, lse) and, with gradients, backward (dq, dk, dv, dbias, dsoftmax_offset) are
 * compared with the expected results. A backend error fails its case, never the run.
 */
export async function runConformance<T>(options: ConformanceOptions<T>): Promise<ConformanceSummary> {
  const dtype = options.dtype ?? "fp32";
  const filter = options.filter;
  const selected = (name: string) =>
    filter === undefined || (typeof filter === "string" ? name.includes(filter) : filter(name));
  const cases = (await listCases(options.dir)).filter((c) => selected(c.case.name));
  const results: CaseResult[] = [];
  for (const c of cases) {
    const result = await runConformanceCase(c, options);
    results.push(result);
    options.onResult?.(result);
  }
  const count = (s: CaseResult["status"]) => results.filter((r) => r.status === s).length;
  return {
    backend: options.backend.id,
    dtype,
    results,
    passed: count("pass"),
    failed: count("fail"),
    skipped: count("skip"),
  };
}

/** Runs one case (see runConformance). */
export async function runConformanceCase<T>(
  onDisk: CaseOnDisk,
  options: Omit<ConformanceOptions<T>, "dir" | "filter" | "onResult">,
): Promise<CaseResult> {
  const started = Date.now();
  const c = onDisk.case;
  const dtype = options.dtype ?? "fp32";
  const gradients = options.gradients ?? true;
  const { backend } = options;
  const bridge = backend.tensors;
  const context = options.context ?? { cudaArch: getCudaArch(), env: processEnv() };
  const done = (rest: Omit<CaseResult, "name" | "ms">): CaseResult => ({
    name: c.name,
    ms: Date.now() - started,
    ...rest,
  });

  const layoutGroup = options.layoutGroup ?? "hd_hd_hd";
  const layoutProblem = layoutGroupProblem(c, layoutGroup);
  if (layoutProblem !== null) {
    return done({
      status: "skip",
      reasons: [{ rule: "conformance.layout", message: layoutProblem }],
      checks: [],
    });
  }
  const call = hostCall(c, generateCaseValues(c, dtype), {
    dtype,
    device: bridge.kind,
    isTraining: gradients,
    layoutGroup,
    thdGap: options.thdGap,
  });
  const p = call.params;
  if (!backend.dtypes.includes(dtype)) {
    const message = `does not support dtype ${dtype} (supports ${backend.dtypes.join(", ")})`;
    return done({ status: "skip", reasons: [{ rule: "dtype", message }], checks: [] });
  }
  const eligibility = backend.explain(p, context);
  if (!eligibility.ok) return done({ status: "skip", reasons: eligibility.reasons, checks: [] });

  const tol = options.tolerance ?? CONFORMANCE_TOLERANCES[dtype];
  const owned = new Set<T>();
  // Every uploaded input with a copy of its values, to catch a backend writing into its inputs.
  const uploaded: { name: string; values: Float64Array; tensor: T }[] = [];
  const upload = async (t: HostTensor, name: string): Promise<T> => {
    const x = await bridge.fromHost(t);
    owned.add(x);
    uploaded.push({ name, values: toFloat64(t), tensor: x });
    return x;
  };
  const download = async (t: T): Promise<HostTensor> => {
    owned.add(t);
    return bridge.toHost(t);
  };
  const checks: TensorCheck[] = [];
  const { qDims, kvDims } = caseDims(c, options.thdGap);
  const check = async (tensor: string, got: Float64Array) => {
    const want = await readExpected(onDisk.path, tensor);
    if (want === null) throw new Error(`expected result ${tensor}.npy is missing in ${onDisk.path}`);
    checks.push(compareValues(tensor, got, want.data, tol));
  };
  const flat = (t: HostTensor, name: string, shape: readonly number[]) => {
    if (t.shape.length !== shape.length || t.shape.some((n, i) => n !== shape[i])) {
      throw new Error(`${name}: expected shape [${shape}], got [${t.shape}]`);
    }
    return toFloat64(t);
  };

  // Saved state of a forward that no backward consumed (gradients off, or a failure in between).
  let unreleased: SavedForBackward | undefined;
  try {
    const i = call.inputs;
    const inputs = {
      ...i,
      q: await upload(i.q, "q"),
      k: await upload(i.k, "k"),
      v: await upload(i.v, "v"),
      bias: i.bias && (await upload(i.bias, "bias")),
      softmaxOffset: i.softmaxOffset && (await upload(i.softmaxOffset, "softmaxOffset")),
    };
    const fwd = await backend.forward(inputs, p);
    unreleased = fwd.saved;
    owned.add(fwd.o).add(fwd.lse);
    await check("o", fromFormat(await download(fwd.o), c.qkvFormat, qDims(c.dv), "o"));
    await check("lse", flat(await download(fwd.lse), "lse", [c.b, c.h, c.sq]));
    if (gradients) {
      const dO = await upload(call.dO, "dO");
      unreleased = undefined; // backward owns the saved state from here
      const g = await backend.backward(fwd.saved, dO, p);
      for (const t of [g.dq, g.dk, g.dv, g.dbias, g.dSoftmaxOffset]) if (t !== undefined) owned.add(t);
      await check("dq", fromFormat(await download(g.dq), c.qkvFormat, qDims(c.d), "dq"));
      await check("dk", fromFormat(await download(g.dk), c.qkvFormat, kvDims(c.d), "dk"));
      await check("dv", fromFormat(await download(g.dv), c.qkvFormat, kvDims(c.dv), "dv"));
      if (p.biasRequiresGrad) {
        if (g.dbias === undefined)
          throw new Error("backward returned no dbias although the bias requires grad");
        await check("dbias", flat(await download(g.dbias), "dbias", i.bias!.shape));
      }
      if (p.softmaxType === "learnable") {
        if (g.dSoftmaxOffset === undefined)
          throw new Error("backward returned no dSoftmaxOffset for learnable softmax");
        await check("dsoftmax_offset", flat(await download(g.dSoftmaxOffset), "dSoftmaxOffset", [c.h]));
      }
    }
    const written: string[] = [];
    for (const u of uploaded) {
      const now = toFloat64(await bridge.toHost(u.tensor));
      if (now.some((x, n) => !Object.is(x, u.values[n]))) written.push(u.name);
    }
    if (written.length > 0) throw new Error(`the backend wrote into its inputs: ${written.join(", ")}`);
  } catch (e) {
    return done({ status: "fail", reasons: [], error: errorText(e), checks });
  } finally {
    try {
      unreleased?.release();
    } catch {
      // As for dispose below: cleanup failures do not change the case's result.
    }
    for (const t of owned) {
      try {
        bridge.dispose(t);
      } catch {
        // A failing dispose must not hide the case's own result.
      }
    }
  }
  if (checks.every((x) => x.passed)) return done({ status: "pass", reasons: [], checks });
  const unreachable = await unreachableInDtype(onDisk, options, checks);
  if (unreachable !== null) return done({ status: "skip", reasons: [unreachable], checks });
  return done({ status: "fail", reasons: [], checks });
}

const worstCheck = (checks: readonly TensorCheck[]) =>
  checks
    .filter((x) => !x.passed)
    .map((x) => `${x.tensor} ${x.maxAbsError.toExponential(1)}`)
    .join(", ");

/**
 * The expected results are computed from the unquantised inputs, so quantising them to fp16/bf16 can
 * move a case beyond its dtype's tolerance for any backend (base_large_logits in bf16: q and k scaled by
 * 8). When a 16-bit run fails, the float64 reference runs the same quantised inputs: if it misses the
 * expected results too, the case cannot be passed in this dtype, and it is a skip that says so and shows
 * both errors; if the reference passes, the failure is the backend's own and stands.
 */
async function unreachableInDtype<T>(
  onDisk: CaseOnDisk,
  options: Omit<ConformanceOptions<T>, "dir" | "filter" | "onResult">,
  checks: readonly TensorCheck[],
): Promise<Reason | null> {
  const dtype = options.dtype ?? "fp32";
  if (dtype === "fp32" || options.backend.id === referenceBackend.id || options.tolerance !== undefined)
    return null;
  const reference = await runConformanceCase(onDisk, {
    dtype,
    gradients: options.gradients,
    backend: referenceBackend,
    thdGap: options.thdGap,
  });
  if (reference.status !== "fail" || reference.error !== undefined) return null;
  return {
    rule: "conformance.unreachable_in_dtype",
    message:
      `the expected results are out of reach in ${dtype}: the float64 reference on the same ${dtype} inputs ` +
      `misses them too (reference ${worstCheck(reference.checks)}; ${options.backend.id} ${worstCheck(checks)})`,
  };
}

function errorText(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return describeValue(e);
}

/** A one-line summary of a case's result: `PASS name  o 1.2e-7 lse 3e-8 ...`. */
export function formatCaseResult(r: CaseResult): string {
  const status = r.status.toUpperCase();
  const errs = r.checks.map(
    (x) => `${x.tensor} ${x.maxAbsError.toExponential(1)}${x.passed ? "" : `(${x.mismatches} bad)`}`,
  );
  const detail =
    r.status === "skip"
      ? r.reasons.map((x) => `${x.message} [${x.rule}]`).join("; ")
      : [...errs, ...(r.error ? [r.error] : [])].join("  ");
  return `${status} ${r.name}  ${detail}  (${r.ms} ms)`;
}
