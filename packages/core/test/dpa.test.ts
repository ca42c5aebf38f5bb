import { describe, expect, it } from "vitest";
import {
  ArgumentError,
  type AttentionBackend,
  alibiBiasTensor,
  DotProductAttention,
  dotProductAttention,
  type HostTensor,
  hostTensor,
  hostTensors,
  paddingMaskFromSeqlens,
  referenceBackend,
  registerBackend,
  type TensorBridge,
  unregisterBackend,
} from "../src/index.js";
import { freshSeed } from "./reference-helpers.js";

/** A seeded fp32 tensor of uniform values in [-1, 1). */
function random(seed: number, shape: number[]): HostTensor {
  let s = seed >>> 0 || 1;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    data[i] = ((s >>> 0) / 2 ** 32) * 2 - 1;
  }
  return hostTensor("fp32", shape, data);
}

/**
 * Attention written out from its definition (bshd, float64): padding by lengths, top-left causal,
 * GQA head groups. Rows past a sequence's length are 0.
 */
function naiveAttention(
  q: HostTensor,
  k: HostTensor,
  v: HostTensor,
  lensQ: number[],
  lensKv: number[],
  causal: boolean,
): Float64Array {
  const [b, sq, h, d] = q.shape;
  const [, skv, hg, dv] = v.shape;
  const out = new Float64Array(b * sq * h * dv);
  for (let bi = 0; bi < b; bi++) {
    for (let hi = 0; hi < h; hi++) {
      const g = Math.floor(hi / (h / hg));
      for (let i = 0; i < lensQ[bi]; i++) {
        const keys = [...Array(lensKv[bi]).keys()].filter((j) => !(causal && j > i));
        const scores = keys.map((j) => {
          let dot = 0;
          for (let x = 0; x < d; x++)
            dot += q.data[((bi * sq + i) * h + hi) * d + x] * k.data[((bi * skv + j) * hg + g) * d + x];
          return dot / Math.sqrt(d);
        });
        const m = Math.max(...scores);
        const w = scores.map((s) => Math.exp(s - m));
        const z = w.reduce((a, c) => a + c, 0);
        keys.forEach((j, n) => {
          for (let x = 0; x < dv; x++)
            out[((bi * sq + i) * h + hi) * dv + x] += (w[n] / z) * v.data[((bi * skv + j) * hg + g) * dv + x];
        });
      }
    }
  }
  return out;
}

describe("DotProductAttention on host tensors", () => {
  it("matches attention from its definition with a padding mask, causal, GQA and dv != d; inputs untouched", async () => {
    const seed = freshSeed();
    const [b, s, h, hg, d, dv] = [2, 5, 4, 2, 8, 6];
    const q = random(seed, [b, s, h, d]);
    const k = random(seed + 1, [b, s, hg, d]);
    const v = random(seed + 2, [b, s, hg, dv]);
    const snapshot = [q, k, v].map((t) => (t.data as Float32Array).slice());
    const lens = [5, 3];
    const mask = paddingMaskFromSeqlens(lens, s);
    const maskSnapshot = mask.data.slice();
    const attention = new DotProductAttention({
      numAttentionHeads: h,
      kvChannels: [d, dv],
      numGqaGroups: hg,
      qkvFormat: "bshd",
      attnMaskType: "padding_causal",
    });
    const r = await attention.forward(q, k, v, { attentionMask: mask });
    expect(r.backend).toBe("reference");
    expect(r.params).toMatchObject({ maskType: "padding_causal", b, h, hg, d, dv, isTraining: true });
    expect(r.output.shape).toEqual([b, s, h, dv]);
    expect(r.lse.shape).toEqual([b, h, s]);
    const want = naiveAttention(q, k, v, lens, lens, true);
    for (let i = 0; i < want.length; i++)
      expect(Math.abs(r.output.data[i] - want[i]), `seed ${seed} at ${i}`).toBeLessThan(1e-5);
    expect(r.lse.data[(1 * h + 0) * s + 4]).toBe(Number.NEGATIVE_INFINITY); // row past entry 1's length
    for (const [i, t] of [q, k, v].entries()) expect(t.data).toEqual(snapshot[i]);
    expect(mask.data).toEqual(maskSnapshot);

    const dO = random(seed + 3, [b, s, h, dv]);
    const g = await r.backward(dO);
    expect(g.dq.shape).toEqual(q.shape);
    expect(g.dk.shape).toEqual(k.shape);
    expect(g.dv.shape).toEqual(v.shape);
    await expect(r.backward(dO)).rejects.toThrow(/already used/);
    r.dispose();
  });

  it("backward agrees with finite differences of sum(o * dO)", async () => {
    const seed = freshSeed();
    const q = random(seed, [1, 3, 1, 2]);
    const k = random(seed + 1, [1, 3, 1, 2]);
    const v = random(seed + 2, [1, 3, 1, 2]);
    const dO = random(seed + 3, [1, 3, 1, 2]);
    const loss = async (qq: HostTensor) => {
      const r = await dotProductAttention(qq, k, v, { attnMaskType: "causal" });
      return [...r.output.data].reduce((a, o, i) => a + o * dO.data[i], 0);
    };
    const r = await dotProductAttention(q, k, v, { attnMaskType: "causal", isTraining: true });
    const g = await r.backward(dO);
    const eps = 1e-2;
    for (let i = 0; i < q.data.length; i++) {
      const plus = hostTensor("fp32", q.shape, (q.data as Float32Array).slice());
      const minus = hostTensor("fp32", q.shape, (q.data as Float32Array).slice());
      plus.data[i] += eps;
      minus.data[i] -= eps;
      const fd = ((await loss(plus)) - (await loss(minus))) / (plus.data[i] - minus.data[i]);
      expect(Math.abs(g.dq.data[i] - fd), `seed ${seed} dq[${i}]`).toBeLessThan(2e-3);
    }
  });

  it("defaults to TE's sbhd and causal in the module; eval mode refuses backward", async () => {
    const attention = new DotProductAttention({ numAttentionHeads: 2, kvChannels: 4 }).eval();
    const x = random(freshSeed(), [3, 1, 2, 4]);
    const r = await attention.forward(x, x, x);
    expect(r.params).toMatchObject({ qkvFormat: "sbhd", maskType: "causal", sq: 3, b: 1, isTraining: false });
    await expect(r.backward(x)).rejects.toThrow(/^isTraining: /);
  });

  it("thd with cu_seqlens runs and agrees with the padded bshd call", async () => {
    const seed = freshSeed();
    const lens = [2, 4];
    const q = random(seed, [6, 2, 4]);
    const cu = Int32Array.from([0, 2, 6]);
    const thd = await dotProductAttention(q, q, q, { qkvFormat: "thd", cuSeqlensQ: cu, cuSeqlensKv: cu });
    expect(thd.params.maskType).toBe("padding");
    const bshd = hostTensor("fp32", [2, 4, 2, 4]);
    for (let t = 0; t < 6; t++) {
      const [bi, i] = t < 2 ? [0, t] : [1, t - 2];
      for (let e = 0; e < 8; e++) bshd.data[(bi * 4 + i) * 8 + e] = q.data[t * 8 + e];
    }
    const padded = await dotProductAttention(bshd, bshd, bshd, {
      attnMaskType: "padding",
      attentionMask: paddingMaskFromSeqlens(lens, 4),
    });
    for (let t = 0; t < 6; t++) {
      const [bi, i] = t < 2 ? [0, t] : [1, t - 2];
      for (let e = 0; e < 8; e++)
        expect(thd.output.data[t * 8 + e]).toBeCloseTo(padded.output.data[(bi * 4 + i) * 8 + e], 6);
    }
  });

  it("argument errors: module arguments, tensors of unknown kind, self attention with a mask pair", async () => {
    expect(() => new DotProductAttention({ numAttentionHeads: 0, kvChannels: 8 })).toThrow(
      /^num_attention_heads: /,
    );
    expect(() => new DotProductAttention({ numAttentionHeads: 4, kvChannels: 8, numGqaGroups: 3 })).toThrow(
      /^num_gqa_groups: /,
    );
    expect(() => new DotProductAttention({ numAttentionHeads: 4, kvChannels: [8, 8, 8] as never })).toThrow(
      /^kv_channels: /,
    );
    expect(
      () => new DotProductAttention({ numAttentionHeads: 4, kvChannels: 8, attentionType: "both" as never }),
    ).toThrow(/^attention_type: /);
    const attention = new DotProductAttention({
      numAttentionHeads: 2,
      kvChannels: 4,
      qkvFormat: "bshd",
      attentionType: "self",
      attnMaskType: "padding",
    });
    const x = random(1, [1, 3, 2, 4]);
    const m = paddingMaskFromSeqlens([2], 3);
    await expect(attention.forward(x, x, x, { attentionMask: [m, m] })).rejects.toThrow(/^attention_mask: /);
    await expect(attention.forward({ opaque: true }, {}, {})).rejects.toSatisfy(
      (e: unknown) => ArgumentError.isInstance(e) && (e as ArgumentError).argument === "tensors",
    );
    await expect(
      new DotProductAttention({ numAttentionHeads: 4, kvChannels: 4, qkvFormat: "bshd" }).forward(x, x, x),
    ).rejects.toThrow(/^query_layer: expected 4 heads/);
  });
});

describe("packed layouts through DotProductAttention", () => {
  it("q, k, v views of one bs3hd buffer are detected as bs3hd and give the separate tensors' output", async () => {
    const [b, s, h, d] = [2, 3, 2, 4];
    const buffer = random(freshSeed(), [b, s, 3, h, d]);
    const strides = [s * 3 * h * d, 3 * h * d, d, 1];
    const view = (i: number): HostTensor => ({
      dtype: "fp32",
      shape: [b, s, h, d],
      strides,
      offset: i * h * d,
      data: buffer.data,
    });
    const separate = (i: number): HostTensor => {
      const t = hostTensor("fp32", [b, s, h, d]);
      for (let r = 0; r < b * s; r++)
        for (let e = 0; e < h * d; e++) t.data[r * h * d + e] = buffer.data[r * 3 * h * d + i * h * d + e];
      return t;
    };
    const packed = await dotProductAttention(view(0), view(1), view(2), { attnMaskType: "causal" });
    expect(packed.params.qkvLayout).toBe("bs3hd");
    const plain = await dotProductAttention(separate(0), separate(1), separate(2), {
      attnMaskType: "causal",
    });
    expect(plain.params.qkvLayout).toBe("bshd_bshd_bshd");
    expect(packed.output.data).toEqual(plain.output.data);
  });
});

describe("ALiBi through DotProductAttention", () => {
  it("default and custom slopes equal a post_scale_bias of alibiBiasTensor", async () => {
    const seed = freshSeed();
    const [b, sq, skv, h, d] = [2, 3, 5, 4, 8];
    const q = random(seed, [b, sq, h, d]);
    const k = random(seed + 1, [b, skv, h, d]);
    const v = random(seed + 2, [b, skv, h, d]);
    for (const slopes of [undefined, Float64Array.from({ length: b * h }, (_, i) => 0.1 + i / 8)]) {
      for (const attnMaskType of ["no_mask", "causal_bottom_right"] as const) {
        const alibi = await dotProductAttention(q, k, v, {
          attnMaskType,
          coreAttentionBiasType: "alibi",
          alibiSlopes: slopes,
        });
        const p = alibi.params;
        const table = alibiBiasTensor(p, { slopes });
        const bias = hostTensor("fp32", table.shape, Float32Array.from(table.data));
        const withBias = await dotProductAttention(q, k, v, {
          attnMaskType,
          coreAttentionBiasType: "post_scale_bias",
          coreAttentionBias: bias,
        });
        expect(alibi.params.alibiSlopes).toBe(slopes ? "bh" : "default");
        for (let i = 0; i < alibi.output.data.length; i++) {
          expect(
            Math.abs(alibi.output.data[i] - withBias.output.data[i]),
            `seed ${seed} ${attnMaskType} at ${i}`,
          ).toBeLessThan(1e-5);
        }
      }
    }
  });
});

describe("DotProductAttention over another tensor type", () => {
  interface Boxed {
    readonly box: HostTensor;
  }
  const boxed: TensorBridge<Boxed> = {
    kind: "boxed-test",
    fromHost: async (t) => ({ box: t }),
    toHost: async (t) => t.box,
    info: (t) => hostTensors.info(t.box),
    dispose: () => {},
  };
  const unbox = (t: Boxed | undefined) => t?.box;
  const backend: AttentionBackend<Boxed> = {
    specificationVersion: "v1",
    id: "boxed.reference",
    family: "UnfusedDotProductAttention",
    tensors: boxed,
    dtypes: ["fp32"],
    rank: () => 0,
    explain: (p, c) => referenceBackend.explain(p, c),
    async forward(inputs, p) {
      const r = await referenceBackend.forward(
        {
          ...inputs,
          q: inputs.q.box,
          k: inputs.k.box,
          v: inputs.v.box,
          bias: unbox(inputs.bias),
          softmaxOffset: unbox(inputs.softmaxOffset),
        },
        p,
      );
      return { o: { box: r.o }, lse: { box: r.lse }, saved: r.saved };
    },
    async backward(saved, dO, p) {
      const g = await referenceBackend.backward(saved, dO.box, p);
      return { dq: { box: g.dq }, dk: { box: g.dk }, dv: { box: g.dv } };
    },
  };

  it("takes the bridge from { tensors } and selects among that kind's backends", async () => {
    registerBackend(backend);
    try {
      const x = random(freshSeed(), [1, 4, 2, 8]);
      const r = await dotProductAttention(
        { box: x },
        { box: x },
        { box: x },
        { tensors: boxed, attnMaskType: "causal", isTraining: true },
      );
      expect(r.backend).toBe("boxed.reference");
      expect(r.params.device).toBe("boxed-test");
      const direct = await dotProductAttention(x, x, x, { attnMaskType: "causal" });
      expect(r.output.box.data).toEqual(direct.output.data);
      const g = await r.backward({ box: x });
      expect(g.dq.box.shape).toEqual([1, 4, 2, 8]);
    } finally {
      unregisterBackend(backend.id);
    }
  });
});
