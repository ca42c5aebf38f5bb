import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { AttentionBackend } from "../src/backend.js";
import { lowbias32, readNpy, runConformance, uniformStream } from "../src/conformance/index.js";
import { fromFloat64, toFloat64 } from "../src/reference/host-values.js";
import { referenceBackend } from "../src/reference/index.js";
import type { HostTensor } from "../src/tensor.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const casesDir = process.env.TE_CONFORMANCE_DIR ?? path.resolve(here, "../../../conformance/cases");
const ONE = "base_d32";

/** The reference with its output changed by `edit` (a deliberately wrong backend). */
function wrongOutput(id: string, edit: (o: Float64Array) => void): AttentionBackend<HostTensor> {
  return {
    ...referenceBackend,
    id,
    async forward(inputs, p) {
      const r = await referenceBackend.forward(inputs, p);
      const o = toFloat64(r.o);
      edit(o);
      return { ...r, o: fromFloat64(r.o.dtype, r.o.shape, o) };
    },
  };
}

describe("runConformance", () => {
  it("fails a case whose output is off by more than the tolerance, and reports the error", async () => {
    const backend = wrongOutput("off", (o) => {
      o[7] += 1e-3;
    });
    const s = await runConformance({ dir: casesDir, backend, filter: ONE, gradients: false });
    expect(s.failed).toBe(1);
    const o = s.results[0].checks.find((c) => c.tensor === "o")!;
    expect(o.passed).toBe(false);
    expect(o.mismatches).toBe(1);
    expect(o.maxAbsError).toBeCloseTo(1e-3, 5);
    expect(s.results[0].checks.find((c) => c.tensor === "lse")!.passed).toBe(true);
  });

  it("skips a 16-bit case that even the float64 reference misses, and still fails a wrong backend there", async () => {
    const exact = { ...referenceBackend, id: "exact" };
    const limited = await runConformance({
      dir: casesDir,
      backend: exact,
      dtype: "bf16",
      filter: "base_large_logits",
      gradients: false,
    });
    expect(limited.results.map((r) => [r.status, r.reasons[0]?.rule])).toEqual([
      ["skip", "conformance.unreachable_in_dtype"],
    ]);
    expect(limited.results[0].reasons[0].message).toMatch(
      /float64 reference on the same bf16 inputs misses them too/,
    );
    const wrong = wrongOutput("wrong", (o) => {
      o[3] += 1;
    });
    const fails = await runConformance({
      dir: casesDir,
      backend: wrong,
      dtype: "bf16",
      filter: ONE,
      gradients: false,
    });
    expect(fails.results.map((r) => r.status)).toEqual(["fail"]);
  });

  it("NaN never passes", async () => {
    const s = await runConformance({
      dir: casesDir,
      backend: wrongOutput("nan", (o) => {
        o[0] = Number.NaN;
      }),
      filter: ONE,
      gradients: false,
    });
    expect(s.failed).toBe(1);
    expect(s.results[0].checks[0].maxAbsError).toBeNaN();
  });

  it("a backend error fails its case with the message instead of stopping the run", async () => {
    const backend: AttentionBackend<HostTensor> = {
      ...referenceBackend,
      id: "throws",
      forward: async () => {
        throw new Error("kernel exploded");
      },
    };
    const s = await runConformance({ dir: casesDir, backend, filter: "base_d" });
    expect(s.failed).toBe(s.results.length);
    expect(s.results.length).toBeGreaterThan(1);
    expect(s.results[0].error).toMatch(/kernel exploded/);
  });

  it("a refusal by explain or dtype is a skip with the reasons", async () => {
    const refusing: AttentionBackend<HostTensor> = {
      ...referenceBackend,
      id: "refusing",
      explain: (p) =>
        p.maskType === "arbitrary"
          ? { ok: false, reasons: [{ rule: "x.mask", message: "no masks" }] }
          : { ok: true },
    };
    const s = await runConformance({ dir: casesDir, backend: refusing, filter: "mask_arbitrary" });
    expect(s.skipped).toBe(1);
    expect(s.results[0].reasons[0].rule).toBe("x.mask");
    const fp32Only = { ...referenceBackend, id: "fp32only", dtypes: ["fp32" as const] };
    const t = await runConformance({ dir: casesDir, backend: fp32Only, filter: ONE, dtype: "bf16" });
    expect(t.skipped).toBe(1);
    expect(t.results[0].reasons[0].rule).toBe("dtype");
  });

  it("fails a backend that writes into its inputs", async () => {
    const scribbler: AttentionBackend<HostTensor> = {
      ...referenceBackend,
      id: "scribbler",
      async forward(inputs, p) {
        const r = await referenceBackend.forward(inputs, p);
        (inputs.k.data as Float32Array)[3] += 1;
        return r;
      },
    };
    const s = await runConformance({ dir: casesDir, backend: scribbler, filter: ONE, gradients: false });
    expect(s.failed).toBe(1);
    expect(s.results[0].error).toMatch(/wrote into its inputs: k$/);
  });

  it("thdGap catches a backend that ignores cu_seqlens_padded", async () => {
    const ignoring: AttentionBackend<HostTensor> = {
      ...referenceBackend,
      id: "ignores-padded",
      forward: (inputs, p) =>
        referenceBackend.forward({ ...inputs, cuSeqlensQPadded: undefined, cuSeqlensKvPadded: undefined }, p),
    };
    const s = await runConformance({
      dir: casesDir,
      backend: ignoring,
      filter: "thd_padding",
      thdGap: 2,
      gradients: false,
    });
    expect(s.results.map((r) => r.status)).toEqual(["fail", "fail"]);
  });

  it("releases the saved state of a forward that no backward consumes", async () => {
    let released = 0;
    const counting = (id: string, breakOutput: boolean): AttentionBackend<HostTensor> => ({
      ...referenceBackend,
      id,
      async forward(inputs, p) {
        const r = await referenceBackend.forward(inputs, p);
        const saved = { release: () => void released++ };
        return { ...r, saved, o: breakOutput ? fromFloat64("fp32", [1], [0]) : r.o };
      },
    });
    await runConformance({
      dir: casesDir,
      backend: counting("no-grad", false),
      filter: ONE,
      gradients: false,
    });
    expect(released).toBe(1);
    const s = await runConformance({ dir: casesDir, backend: counting("bad-o", true), filter: ONE });
    expect(s.results[0].error).toMatch(/o\.shape|shape/);
    expect(released).toBe(2);
  });

  it("calls onResult for each case in order", async () => {
    const names: string[] = [];
    const s = await runConformance({
      dir: casesDir,
      backend: referenceBackend,
      filter: "base_d",
      onResult: (r) => names.push(r.name),
      gradients: false,
    });
    expect(names).toEqual(s.results.map((r) => r.name));
    expect(names).toEqual([...names].sort());
  });

  it("a directory that does not exist is an ArgumentError naming dir", async () => {
    const dir = path.join(await mkdtemp(path.join(os.tmpdir(), "te-conf-")), "missing");
    await expect(runConformance({ dir, backend: referenceBackend })).rejects.toThrow(/^dir: /);
  });
});

describe("npy and the input generator", () => {
  it("reads float32 and float64 .npy files of any shape", async () => {
    const make = (descr: string, shape: string, values: number[], bytes: 4 | 8) => {
      let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
      header += " ".repeat(64 - ((10 + header.length + 1) % 64)) + "\n";
      const out = new Uint8Array(10 + header.length + values.length * bytes);
      out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
      new DataView(out.buffer).setUint16(8, header.length, true);
      out.set(new TextEncoder().encode(header), 10);
      const view = new DataView(out.buffer, 10 + header.length);
      values.forEach((v, i) => {
        if (bytes === 4) view.setFloat32(4 * i, v, true);
        else view.setFloat64(8 * i, v, true);
      });
      return out;
    };
    const a = readNpy(make("<f4", "(2, 3)", [1, 2, 3, 4, 5, -Infinity], 4));
    expect(a.shape).toEqual([2, 3]);
    expect([...a.data]).toEqual([1, 2, 3, 4, 5, -Infinity]);
    const b = readNpy(make("<f8", "(3,)", [0.1, 0.2, 0.3], 8));
    expect(b.shape).toEqual([3]);
    expect([...b.data]).toEqual([0.1, 0.2, 0.3]);
    expect(readNpy(make("<f4", "()", [7], 4)).shape).toEqual([]);
    expect(() => readNpy(make("<i4", "(1,)", [1], 4))).toThrow(/dtype/);
    expect(() => readNpy(new Uint8Array(12))).toThrow(/npy/);
  });

  it("lowbias32 and the uniform streams follow FORMAT.md", async () => {
    expect(lowbias32(0)).toBe(0);
    // Spelled out with BigInt arithmetic mod 2^32.
    const slow = (x: number) => {
      const m = (1n << 32n) - 1n;
      let h = BigInt(x);
      h ^= h >> 16n;
      h = (h * 0x7feb352dn) & m;
      h ^= h >> 15n;
      h = (h * 0x846ca68bn) & m;
      h ^= h >> 16n;
      return Number(h);
    };
    for (const x of [1, 0xdeadbeef, 0xffffffff, 12345678]) expect(lowbias32(x)).toBe(slow(x));
    const seed = 0xfedcba98;
    const u = uniformStream(seed, 3, 5);
    for (let i = 0; i < 5; i++) {
      const counter = Number((BigInt(seed) * 0x9e3779b1n + 3n * 0x85ebca77n + BigInt(i)) % (1n << 32n));
      expect(u[i]).toBe((slow(counter) >>> 8) / 2 ** 24);
    }
  });
});
