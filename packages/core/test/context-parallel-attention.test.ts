import { describe, expect, it } from "vitest";
import {
  ArgumentError,
  type AttentionBackend,
  type AttentionParams,
  BackendError,
  type CpAlgorithm,
  contextParallelBackward,
  contextParallelForward,
  explainContextParallel,
  type HostTensor,
  makeParams,
  mergeSequenceFromRanks,
  mergeThdFromRanks,
  mergeThdLseFromRanks,
  runEmulatedRanks,
  sequenceAxisOf,
  splitSequenceForRank,
  splitThdForRank,
} from "../src/index.js";
import { fromFloat64, referenceBackend, toFloat64 } from "../src/reference/index.js";

/**
 * Context-parallel attention on emulated ranks against the unsplit reference: every rank gets its
 * load-balanced part of fresh random inputs, and the parts of o, lse, dq, dk, dv it returns, merged
 * back, must equal the reference's results for the whole sequence.
 */

type Format = "bshd" | "sbhd";

function shapeOf(format: Format, b: number, s: number, heads: number, dim: number): number[] {
  return format === "bshd" ? [b, s, heads, dim] : [s, b, heads, dim];
}

function random(dtype: "fp64" | "fp32" | "fp16", shape: number[]): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return fromFloat64(
    dtype,
    shape,
    Float64Array.from({ length: n }, () => Math.random() * 2 - 1),
  );
}

/** Largest |a - b| over elements, relative to max(1, |b|); NaN anywhere fails. */
function maxError(a: HostTensor, b: HostTensor): number {
  expect(a.shape).toEqual(b.shape);
  const [x, y] = [toFloat64(a), toFloat64(b)];
  let worst = 0;
  for (let i = 0; i < x.length; i++) {
    const e = Math.abs(x[i] - y[i]) / Math.max(1, Math.abs(y[i]));
    if (!(e <= worst)) worst = Number.isNaN(e) ? Number.POSITIVE_INFINITY : e;
  }
  return worst;
}

interface Case {
  readonly algorithm: CpAlgorithm;
  readonly cp: number;
  readonly format: Format;
  readonly maskType: "no_mask" | "causal";
  readonly dtype: "fp64" | "fp32" | "fp16";
  readonly skv?: number;
  readonly window?: readonly [number, number];
}

async function compareWithReference(c: Case, backend: AttentionBackend<HostTensor> = referenceBackend) {
  // GQA: 2 query heads per k/v head; a2a needs both head counts divisible by cp.
  const [h, hg] = c.cp === 4 ? [8, 4] : [4, 2];
  const sq = 16;
  const p = makeParams({
    b: 2,
    h,
    hg,
    d: 8,
    dv: 6,
    sq,
    skv: c.skv ?? sq,
    qkvFormat: c.format,
    maskType: c.maskType,
    window: c.window ?? [-1, -1],
    isTraining: true,
    cpSize: c.cp,
    dtype: c.dtype === "fp16" ? "fp16" : "fp32",
  });
  const q = random(c.dtype, shapeOf(c.format, p.b, p.sq, p.h, p.d));
  const k = random(c.dtype, shapeOf(c.format, p.b, p.skv, p.hg, p.d));
  const v = random(c.dtype, shapeOf(c.format, p.b, p.skv, p.hg, p.dv));
  const dO = random(c.dtype, shapeOf(c.format, p.b, p.sq, p.h, p.dv));
  const whole: AttentionParams = { ...p, cpSize: 1 };
  const expected = await referenceBackend.forward({ q, k, v }, whole);
  const grads = await referenceBackend.backward(expected.saved, dO, whole);

  const axis = sequenceAxisOf(c.format);
  const qCopy = toFloat64(q);
  const perRank = await runEmulatedRanks(c.cp, async (comm) => {
    const part = (t: HostTensor) => splitSequenceForRank(t, axis, c.cp, comm.rank);
    const inputs = { q: part(q), k: part(k), v: part(v) };
    const forward = await contextParallelForward(inputs, p, { backend, comm, algorithm: c.algorithm });
    const g = await contextParallelBackward(forward.saved, part(dO));
    return { o: forward.o, lse: forward.lse, ...g };
  });
  expect(Array.from(toFloat64(q))).toEqual(Array.from(qCopy));
  const merged = (key: "o" | "lse" | "dq" | "dk" | "dv", a: number) =>
    mergeSequenceFromRanks(
      perRank.map((r) => r[key]),
      a,
    );
  return {
    o: maxError(merged("o", axis), expected.o),
    lse: maxError(merged("lse", 2), expected.lse),
    dq: maxError(merged("dq", axis), grads.dq),
    dk: maxError(merged("dk", axis), grads.dk),
    dv: maxError(merged("dv", axis), grads.dv),
  };
}

/**
 * The reference reports lse in fp32 (the contract), so the p2p ring, which merges block outputs by
 * their lse, is exact only to fp32's precision even on float64 inputs; all_gather and a2a never merge
 * and match to float64 precision. The whole-sequence lse is fp32 for every algorithm.
 */
function tolerances(c: Case) {
  // fp16: each block's output and gradients are rounded to fp16 before they are merged or summed.
  if (c.dtype === "fp16") return { values: 5e-3, lse: 1e-5 };
  if (c.dtype === "fp32") return { values: 1e-5, lse: 1e-5 };
  return { values: c.algorithm === "p2p" ? 5e-7 : 1e-10, lse: 5e-7 };
}

const CASES: Case[] = [];
for (const algorithm of ["p2p", "all_gather", "a2a"] as const)
  for (const cp of [2, 4])
    for (const format of ["bshd", "sbhd"] as const)
      for (const maskType of ["no_mask", "causal"] as const)
        CASES.push({ algorithm, cp, format, maskType, dtype: "fp64" });
for (const algorithm of ["p2p", "all_gather", "a2a"] as const) {
  CASES.push({ algorithm, cp: 2, format: "bshd", maskType: "causal", dtype: "fp32" });
  CASES.push({ algorithm, cp: 4, format: "sbhd", maskType: "causal", dtype: "fp16" });
  // Cross attention (sq 16, skv 24) without a mask.
  CASES.push({ algorithm, cp: 2, format: "sbhd", maskType: "no_mask", dtype: "fp64", skv: 24 });
  CASES.push({ algorithm, cp: 4, format: "bshd", maskType: "no_mask", dtype: "fp64", skv: 24 });
}
// a2a keeps whole rows on one rank, so a sliding window works there.
CASES.push({ algorithm: "a2a", cp: 2, format: "bshd", maskType: "causal", dtype: "fp64", window: [3, 0] });
// all_gather's bottom-right causal blocks align a causal window too.
CASES.push({
  algorithm: "all_gather",
  cp: 2,
  format: "sbhd",
  maskType: "causal",
  dtype: "fp64",
  window: [3, 0],
});
CASES.push({
  algorithm: "all_gather",
  cp: 4,
  format: "bshd",
  maskType: "causal",
  dtype: "fp64",
  window: [5, 0],
});

describe("context-parallel attention on emulated ranks matches the unsplit reference", () => {
  for (const c of CASES) {
    const name = `${c.algorithm} cp=${c.cp} ${c.format} ${c.maskType} ${c.dtype}${c.skv ? ` skv=${c.skv}` : ""}${c.window ? ` window=${c.window}` : ""}`;
    it(name, async () => {
      const errors = await compareWithReference(c);
      const tol = tolerances(c);
      expect(errors.o).toBeLessThan(tol.values);
      expect(errors.lse).toBeLessThan(tol.lse);
      expect(errors.dq).toBeLessThan(tol.values);
      expect(errors.dk).toBeLessThan(tol.values);
      expect(errors.dv).toBeLessThan(tol.values);
    });
  }
});

describe("context-parallel eligibility", () => {
  const base = makeParams({
    b: 1,
    h: 4,
    hg: 2,
    d: 8,
    sq: 16,
    maskType: "causal",
    isTraining: true,
    cpSize: 4,
  });
  const reasonsOf = (
    p: AttentionParams,
    algorithm: CpAlgorithm,
    backend: AttentionBackend<HostTensor> = referenceBackend,
  ) => {
    const e = explainContextParallel(backend as AttentionBackend<unknown>, p, algorithm);
    return e.ok ? [] : e.reasons.map((r) => r.rule);
  };

  it("accepts what the algorithms support", () => {
    expect(reasonsOf(base, "p2p")).toEqual([]);
    expect(reasonsOf(base, "all_gather")).toEqual([]);
  });

  it("reports each unsupported feature as a cp.* rule", () => {
    expect(reasonsOf({ ...base, maskType: "padding_causal" }, "p2p")).toContain("cp.mask");
    expect(reasonsOf({ ...base, window: [4, 0] }, "p2p")).toContain("cp.window");
    expect(reasonsOf({ ...base, window: [4, 0] }, "a2a")).not.toContain("cp.window");
    expect(reasonsOf({ ...base, window: [4, 0] }, "all_gather")).toEqual([]);
    expect(reasonsOf({ ...base, maskType: "no_mask", window: [4, 4] }, "all_gather")).toContain("cp.window");
    expect(reasonsOf({ ...base, dropout: 0.1 }, "all_gather")).toContain("cp.dropout");
    expect(reasonsOf({ ...base, sq: 12, skv: 12 }, "p2p")).toContain("cp.divisible");
    expect(reasonsOf({ ...base, skv: 32 }, "p2p")).toContain("cp.causal_lengths");
    const thd = { ...base, qkvFormat: "thd", qkvLayout: "thd_thd_thd" } as const;
    expect(reasonsOf(thd, "all_gather")).toContain("cp.format");
    expect(reasonsOf(thd, "p2p")).toEqual(["cp.mask"]);
    expect(reasonsOf({ ...thd, maskType: "padding_causal" }, "p2p")).toEqual([]);
    expect(reasonsOf({ ...base, softmaxType: "off_by_one" }, "p2p")).toContain("cp.softmax");
    expect(reasonsOf({ ...base, softmaxType: "off_by_one" }, "all_gather")).toEqual([]);
    expect(reasonsOf(base, "a2a")).toContain("cp.a2a_heads");
  });

  it("rejects p2p training on a backend without backwardFromStats, with the reason", async () => {
    const { backwardFromStats: _omitted, ...plain } = referenceBackend;
    expect(reasonsOf(base, "p2p", plain)).toEqual(["cp.backward_from_stats"]);
    expect(reasonsOf(base, "all_gather", plain)).toEqual([]);
    expect(reasonsOf({ ...base, isTraining: false }, "p2p", plain)).toEqual([]);
    await expect(
      compareWithReference(
        { algorithm: "p2p", cp: 2, format: "bshd", maskType: "causal", dtype: "fp64" },
        plain,
      ),
    ).rejects.toSatisfy((e: unknown) => e instanceof BackendError && /backwardFromStats/.test(e.message));
  });

  it("a backend failing mid-ring fails every rank cleanly", async () => {
    let calls = 0;
    const flaky: AttentionBackend<HostTensor> = {
      ...referenceBackend,
      forward: async (inputs, p) => {
        calls++;
        if (calls === 3) throw new Error("block kernel failed");
        return referenceBackend.forward(inputs, p);
      },
    };
    await expect(
      compareWithReference(
        { algorithm: "p2p", cp: 2, format: "bshd", maskType: "causal", dtype: "fp64" },
        flaky,
      ),
    ).rejects.toThrow("block kernel failed");
  });

  it("passes the backend's own reasons for its blocks through", () => {
    const picky: AttentionBackend<HostTensor> = {
      ...referenceBackend,
      explain: (p) =>
        p.maskType === "causal_bottom_right"
          ? { ok: false, reasons: [{ rule: "picky.mask", message: "no bottom-right causal" }] }
          : { ok: true },
    };
    expect(reasonsOf(base, "all_gather", picky)).toEqual(["picky.mask"]);
    expect(reasonsOf(base, "p2p", picky)).toEqual([]);
  });

  it("checks the call's arguments against the group", async () => {
    const run = runEmulatedRanks(2, async (comm) => {
      const p = makeParams({ b: 1, h: 2, d: 4, sq: 8, cpSize: 4 });
      const t = fromFloat64("fp64", [1, 4, 2, 4], new Float64Array(32));
      return contextParallelForward({ q: t, k: t, v: t }, p, {
        backend: referenceBackend,
        comm,
        algorithm: "p2p",
      });
    });
    await expect(run).rejects.toSatisfy(
      (e: unknown) => ArgumentError.isInstance(e) && e.argument === "params.cpSize",
    );
    const wrongShape = runEmulatedRanks(2, async (comm) => {
      const p = makeParams({ b: 1, h: 2, d: 4, sq: 8, cpSize: 2 });
      const t = fromFloat64("fp64", [1, 8, 2, 4], new Float64Array(64));
      return contextParallelForward({ q: t, k: t, v: t }, p, {
        backend: referenceBackend,
        comm,
        algorithm: "a2a",
      });
    });
    await expect(wrongShape).rejects.toSatisfy(
      (e: unknown) => ArgumentError.isInstance(e) && e.argument === "q.shape",
    );
  });
});

describe("context-parallel p2p on packed (thd) sequences matches the unsplit reference", () => {
  interface ThdCase {
    readonly cp: number;
    readonly maskType: "padding" | "padding_causal";
    readonly q: { lengths: number[]; padded?: number[] };
    readonly kv?: { lengths: number[]; padded?: number[] };
  }
  const cumulative = (xs: number[]) =>
    Int32Array.from([0, ...xs.map((_, i) => xs.slice(0, i + 1).reduce((a, b) => a + b, 0))]);

  async function compareThd(c: ThdCase) {
    const kvSide = c.kv ?? c.q;
    const [h, hg, d, dv] = [4, 2, 8, 6];
    const sides = [c.q, kvSide].map((s) => ({
      cu: cumulative(s.lengths),
      padded: s.padded ? cumulative(s.padded) : undefined,
      offsets: cumulative(s.padded ?? s.lengths),
      max: Math.max(...(s.padded ?? s.lengths)),
    }));
    const [qs, kvs] = sides;
    const p = makeParams({
      b: c.q.lengths.length,
      h,
      hg,
      d,
      dv,
      sq: qs.max,
      skv: kvs.max,
      qkvFormat: "thd",
      maskType: c.maskType,
      tq: qs.offsets[c.q.lengths.length],
      tkv: kvs.offsets[c.q.lengths.length],
      paddedThd: true,
      isTraining: true,
      cpSize: c.cp,
    });
    const q = random("fp64", [p.tq, h, d]);
    const k = random("fp64", [p.tkv, hg, d]);
    const v = random("fp64", [p.tkv, hg, dv]);
    const dO = random("fp64", [p.tq, h, dv]);
    const sequences = {
      cuSeqlensQ: qs.cu,
      cuSeqlensKv: kvs.cu,
      cuSeqlensQPadded: qs.offsets,
      cuSeqlensKvPadded: kvs.offsets,
    };
    const whole: AttentionParams = { ...p, cpSize: 1 };
    const expected = await referenceBackend.forward({ q, k, v, ...sequences }, whole);
    const grads = await referenceBackend.backward(expected.saved, dO, whole);
    const perRank = await runEmulatedRanks(c.cp, async (comm) => {
      const part = (t: HostTensor, offsets: Int32Array) => splitThdForRank(t, offsets, c.cp, comm.rank);
      const inputs = {
        q: part(q, qs.offsets),
        k: part(k, kvs.offsets),
        v: part(v, kvs.offsets),
        cuSeqlensQ: qs.cu,
        cuSeqlensKv: kvs.cu,
        cuSeqlensQPadded: qs.padded,
        cuSeqlensKvPadded: kvs.padded,
      };
      const forward = await contextParallelForward(inputs, p, {
        backend: referenceBackend,
        comm,
        algorithm: "p2p",
      });
      const g = await contextParallelBackward(forward.saved, part(dO, qs.offsets));
      return { o: forward.o, lse: forward.lse, ...g };
    });
    const merged = (key: "o" | "dq" | "dk" | "dv", offsets: Int32Array) =>
      toFloat64(
        mergeThdFromRanks(
          perRank.map((r) => r[key]),
          offsets,
        ),
      );
    /** Largest error over the valid rows; the padding rows of CP's results must be exactly 0. */
    const rowsError = (got: Float64Array, want: HostTensor, side: typeof qs) => {
      const w = toFloat64(want);
      const width = got.length / side.offsets[side.offsets.length - 1];
      let worst = 0;
      for (let i = 0; i + 1 < side.cu.length; i++) {
        const valid = side.cu[i + 1] - side.cu[i];
        for (let row = side.offsets[i]; row < side.offsets[i + 1]; row++) {
          for (let e = 0; e < width; e++) {
            const x = got[row * width + e];
            const err = row - side.offsets[i] < valid ? Math.abs(x - w[row * width + e]) : Math.abs(x);
            if (!(err <= worst)) worst = Number.isNaN(err) ? Number.POSITIVE_INFINITY : err;
          }
        }
      }
      return worst;
    };
    const lse = toFloat64(
      mergeThdLseFromRanks(
        perRank.map((r) => r.lse),
        qs.offsets,
        p.sq,
      ),
    );
    const wantLse = toFloat64(expected.lse);
    let lseError = 0;
    for (let i = 0; i + 1 < qs.cu.length; i++) {
      for (let hh = 0; hh < h; hh++) {
        for (let pos = 0; pos < qs.cu[i + 1] - qs.cu[i]; pos++) {
          const at = (i * h + hh) * p.sq + pos;
          lseError = Math.max(lseError, Math.abs(lse[at] - wantLse[at]) / Math.max(1, Math.abs(wantLse[at])));
        }
      }
    }
    return {
      o: rowsError(merged("o", qs.offsets), expected.o, qs),
      lse: lseError,
      dq: rowsError(merged("dq", qs.offsets), grads.dq, qs),
      dk: rowsError(merged("dk", kvs.offsets), grads.dk, kvs),
      dv: rowsError(merged("dv", kvs.offsets), grads.dv, kvs),
    };
  }

  const THD_CASES: [string, ThdCase][] = [
    ["cp=2 padding_causal, no padding", { cp: 2, maskType: "padding_causal", q: { lengths: [4, 8, 12] } }],
    [
      "cp=2 padding_causal, padded sequences (lengths 5, 8, 3)",
      { cp: 2, maskType: "padding_causal", q: { lengths: [5, 8, 3], padded: [8, 8, 4] } },
    ],
    [
      "cp=4 padding_causal, padded sequences (lengths 5, 16, 1)",
      { cp: 4, maskType: "padding_causal", q: { lengths: [5, 16, 1], padded: [8, 16, 8] } },
    ],
    [
      "cp=2 padding, cross lengths",
      {
        cp: 2,
        maskType: "padding",
        q: { lengths: [5, 8, 3], padded: [8, 8, 4] },
        kv: { lengths: [7, 2, 12], padded: [8, 4, 12] },
      },
    ],
    [
      "cp=4 padding, cross lengths",
      {
        cp: 4,
        maskType: "padding",
        q: { lengths: [9, 8], padded: [16, 8] },
        kv: { lengths: [3, 16], padded: [8, 16] },
      },
    ],
  ];
  for (const [name, c] of THD_CASES) {
    it(name, async () => {
      const errors = await compareThd(c);
      for (const value of Object.values(errors)) expect(value).toBeLessThan(5e-7);
    });
  }
});
