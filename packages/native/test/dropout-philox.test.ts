import {
  dropoutKeepRow,
  type HostTensor,
  hostTensor,
  makeParams,
  philox4x32,
  referenceBackend,
} from "@te/core";
import { describe, expect, test } from "vitest";
import { loadBinding, nativeCpuBackend } from "../src/index.js";

const randomU32 = () => Math.floor(Math.random() * 2 ** 32) >>> 0;

describe("dropout RNG of native.cpu", () => {
  test("the C++ Philox-4x32-10 gives dropout-rng.ts's words for random counters and keys", () => {
    const binding = loadBinding();
    for (let n = 0; n < 2000; n++) {
      const counter = new Uint32Array([randomU32(), randomU32(), randomU32(), randomU32()]);
      const key = new Uint32Array([randomU32(), randomU32()]);
      const want = philox4x32([counter[0], counter[1], counter[2], counter[3]], [key[0], key[1]]);
      expect([...binding.philox(counter, key)]).toEqual([...want]);
    }
  });

  test("forward with dropout matches the reference (same keep bits), and gradients too", async () => {
    const [b, h, s, d] = [2, 3, 37, 16];
    const p = makeParams({ b, h, d, sq: s, dropout: 0.3, isTraining: true, maskType: "causal" });
    const rand = (shape: number[]): HostTensor => {
      const t = hostTensor("fp32", shape);
      for (let i = 0; i < t.data.length; i++) t.data[i] = Math.random() * 2 - 1;
      return t;
    };
    const seed = Math.floor(Math.random() * 2 ** 40);
    const offset = randomU32();
    const inputs = {
      q: rand([b, s, h, d]),
      k: rand([b, s, h, d]),
      v: rand([b, s, h, d]),
      dropoutSeed: seed,
      dropoutOffset: offset,
    };
    const native = nativeCpuBackend();
    const got = await native.forward(inputs, p);
    const want = await referenceBackend.forward(inputs, p);
    const gotO = got.o.data as Float32Array;
    const wantO = want.o.data as Float32Array;
    let maxErr = 0;
    for (let i = 0; i < gotO.length; i++) maxErr = Math.max(maxErr, Math.abs(gotO[i] - wantO[i]));
    expect(maxErr).toBeLessThan(1e-4);
    // Dropout really dropped: some keep bits are 0 for this row.
    const keep = dropoutKeepRow({ seed, offset, p: 0.3, heads: h }, 0, 0, s - 1, s, new Uint8Array(s));
    expect(keep.includes(0)).toBe(true);
    const dO = rand([b, s, h, d]);
    const g = await native.backward(got.saved, dO, p);
    const r = await referenceBackend.backward(want.saved, dO, p);
    for (const name of ["dq", "dk", "dv"] as const) {
      const x = g[name].data as Float32Array;
      const y = r[name].data as Float32Array;
      let err = 0;
      for (let i = 0; i < x.length; i++) err = Math.max(err, Math.abs(x[i] - y[i]) / (1 + Math.abs(y[i])));
      expect(err, name).toBeLessThan(1e-4);
    }
  });
});
