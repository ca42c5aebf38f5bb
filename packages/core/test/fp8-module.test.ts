import { describe, expect, it } from "vitest";
import {
  type AttentionBackend,
  DotProductAttention,
  delayedScaling,
  FP8_E4M3,
  FP8_E5M2,
  type Fp8ReferenceSaved,
  fp8ReferenceBackward,
  fp8ReferenceForward,
  type HostTensor,
  hostTensor,
  hostTensors,
  referenceBackend,
  registerBackend,
  type SavedForBackward,
  type TensorBridge,
  unregisterBackend,
} from "../src/index.js";

/**
 * DotProductAttention's FP8 recipe loop (TE's fp8_meta on the module): the backend gets the module's
 * state, records amaxes into it, and the module updates the forward scales after forward and the
 * backward scales after an FP8 backward. The backend here is the FP8 emulation on a tensor kind of
 * its own, so the reference (which refuses FP8) stays out of the way.
 */

interface Boxed {
  readonly box: HostTensor;
}
const boxed: TensorBridge<Boxed> = {
  kind: "fp8-emulation-test",
  fromHost: async (t) => ({ box: t }),
  toHost: async (t) => t.box,
  info: (t) => hostTensors.info(t.box),
  dispose: () => {},
};

class EmulationSaved implements SavedForBackward {
  constructor(readonly saved: Fp8ReferenceSaved) {}
  release(): void {}
}

const calls: { pass: string; qScale: number; dOScale: number }[] = [];
const emulation: AttentionBackend<Boxed> = {
  specificationVersion: "v1",
  id: "fp8.emulation",
  family: "FusedAttention",
  tensors: boxed,
  dtypes: ["bf16"],
  rank: () => 0,
  explain: (p, c) => referenceBackend.explain({ ...p, fp8: null }, c),
  async forward(inputs, p) {
    const state = inputs.fp8Meta;
    if (!state) throw new Error("the module passes its fp8 state");
    calls.push({ pass: "forward", qScale: state.q.scale, dOScale: state.dO.scale });
    const r = fp8ReferenceForward(
      {
        ...inputs,
        bias: undefined,
        softmaxOffset: undefined,
        q: inputs.q.box,
        k: inputs.k.box,
        v: inputs.v.box,
      },
      p,
      state,
    );
    // The state travels with the saved forward, as the GPU backend keeps it.
    const saved = Object.assign(new EmulationSaved(r.saved), { state });
    return { o: { box: r.o }, lse: { box: r.lse }, saved };
  },
  async backward(saved, dO, p) {
    const s = saved as EmulationSaved & { state: NonNullable<Parameters<typeof fp8ReferenceBackward>[3]> };
    calls.push({ pass: "backward", qScale: s.state.q.scale, dOScale: s.state.dO.scale });
    const g = await fp8ReferenceBackward(s.saved, dO.box, p, s.state);
    return { dq: { box: g.dq }, dk: { box: g.dk }, dv: { box: g.dv } };
  },
};

function randomBf16(seed: number, shape: number[], scale: number): Boxed {
  let s = seed;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    data[i] = ((s / 2 ** 31) * 2 - 1) * scale;
  }
  return { box: hostTensor("bf16", shape, toBf16(data)) };
}

function toBf16(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer.slice(0));
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = (u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16;
  return out;
}

describe("DotProductAttention with an FP8 recipe", () => {
  it("hands its state to the backend and updates the scales after each pass, as TE's DelayedScaling", async () => {
    registerBackend(emulation);
    calls.length = 0;
    try {
      const recipe = delayedScaling({ fp8Dpa: true, amaxHistoryLen: 4 });
      const module = new DotProductAttention({
        numAttentionHeads: 2,
        kvChannels: 16,
        qkvFormat: "bshd",
        attnMaskType: "causal",
        fp8Recipe: recipe,
      });
      const state = module.fp8Meta;
      expect(state?.q.dtype).toBe("fp8e4m3");
      expect(state?.dO.dtype).toBe("fp8e5m2");
      const shape = [1, 8, 2, 16];
      const [q, k, v] = [randomBf16(1, shape, 2), randomBf16(2, shape, 3), randomBf16(3, shape, 1)];
      const dO = randomBf16(4, shape, 0.5);
      const env = { NVTE_FP8_DPA_BWD: "1" };
      const first = await module.forward(q, k, v, { tensors: boxed, selection: { env } });
      expect(first.backend).toBe("fp8.emulation");
      // After the forward: q, k, v share the scale fp8_max / amax(q, k, v); the history rolled.
      const amaxQkv = Math.max(...[q, k, v].flatMap((t) => [...boxedValues(t)].map(Math.abs)));
      expect(state?.q.scale).toBeCloseTo(FP8_E4M3.max / amaxQkv, 6);
      expect(state?.k.scale).toBe(state?.q.scale);
      expect(state?.q.amaxHistory[1]).toBeCloseTo(amaxQkv, 6);
      expect(state?.dO.scale).toBe(1);
      await first.backward(dO);
      const amaxDo = Math.max(...[...boxedValues(dO)].map(Math.abs));
      expect(state?.dO.scale).toBeCloseTo(FP8_E5M2.max / amaxDo, 6);
      await (await module.forward(q, k, v, { tensors: boxed, selection: { env } })).backward(dO);
      // The second step ran with the updated scales.
      expect(calls.map((c) => c.pass)).toEqual(["forward", "backward", "forward", "backward"]);
      expect(calls[0].qScale).toBe(1);
      expect(calls[2].qScale).toBeCloseTo(FP8_E4M3.max / amaxQkv, 6);
      expect(calls[3].dOScale).toBeCloseTo(FP8_E5M2.max / amaxDo, 6);
    } finally {
      unregisterBackend(emulation.id);
    }
  });

  it("has no FP8 state without fp8_dpa or fp8_mha", () => {
    const plain = new DotProductAttention({
      numAttentionHeads: 2,
      kvChannels: 16,
      fp8Recipe: delayedScaling(),
    });
    expect(plain.fp8Meta).toBeNull();
  });
});

function boxedValues(t: Boxed): Float64Array {
  const u = t.box.data as Uint16Array;
  const f = new Float32Array(new Uint32Array(Array.from(u, (x) => x << 16)).buffer);
  return Float64Array.from(f);
}
