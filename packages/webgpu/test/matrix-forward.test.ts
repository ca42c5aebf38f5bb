/**
 * The subgroup-matrix forward of webgpu.flash: when it is chosen, and that its WGSL compiles. CI's SwiftShader
 * has neither subgroup matrices nor shader-f16, so the compile check runs on a stand-in of the matrix builtins
 * (matrix-stand-in.ts); what the matrices compute is checked by the conformance cases on the GPU machine.
 */
import type { AttentionParams } from "@te/core";
import { afterEach, describe, expect, it } from "vitest";
import { currentDevice, releaseDevice, setDevice } from "../src/device.js";
import { pairsInWords } from "../src/flash/kernels.js";
import { matrixForwardWgsl } from "../src/flash/matrix-forward-wgsl.js";
import {
  chooseMatrixTile,
  MATRIX_TILES,
  type MatrixTile,
  matrixBytes,
  matrixDeviceProblem,
} from "../src/flash/matrix-tiles.js";
import {
  bindingsOf,
  declaredWorkgroupBytes,
  describeStandInCompiles,
  F16_CONFIG,
  fakeDevice,
} from "./matrix-harness.js";

const fp16 = { d: 64, dv: 64, dtype: "fp16" } as const;

describe("matrix forward eligibility", () => {
  afterEach(() => {
    delete process.env.TE_WEBGPU_FLASH_MATRIX;
    delete process.env.TE_WEBGPU_FLASH_TILES;
  });

  it("takes fp16 calls up to head dim 128 on devices with 32-lane subgroups and an f16 16x16x16 config", () => {
    expect(chooseMatrixTile(fakeDevice({}), fp16)).toMatchObject({ dc: 64, dvc: 64, tile: MATRIX_TILES[64] });
    expect(chooseMatrixTile(fakeDevice({}), { d: 96, dv: 64, dtype: "fp16" })).toMatchObject({
      dc: 128,
      dvc: 64,
      tile: MATRIX_TILES[128],
    });
  });

  it("says why not", () => {
    const problem = (device: GPUDevice, p: Parameters<typeof chooseMatrixTile>[1] = fp16) =>
      (chooseMatrixTile(device, p) as { problem?: string }).problem;
    expect(problem(fakeDevice({ features: ["subgroups", "shader-f16"] }))).toMatch(
      /lacks the feature\(s\) chromium-experimental-subgroup-matrix/,
    );
    expect(problem(fakeDevice({ subgroups: [16, 64] }))).toMatch(/subgroups of 16-64 lanes/);
    expect(problem(fakeDevice({ configs: [{ ...F16_CONFIG, resultComponentType: "f16" }] }))).toMatch(
      /no f16 x f16 -> f32 16x16x16/,
    );
    expect(problem(fakeDevice({}), { ...fp16, dtype: "fp32" })).toMatch(/dtype fp32/);
    expect(problem(fakeDevice({}), { ...fp16, dtype: "bf16" })).toMatch(/dtype bf16/);
    expect(problem(fakeDevice({}), { ...fp16, d: 192 })).toMatch(/above 128/);
    expect(problem(fakeDevice({ workgroupBytes: 12288 }))).toMatch(/workgroup memory/);
    process.env.TE_WEBGPU_FLASH_MATRIX = "0";
    expect(matrixDeviceProblem(fakeDevice({}))).toMatch(/TE_WEBGPU_FLASH_MATRIX=0/);
  });

  it("reads the configurations from the adapter handed over with setDevice (Dawn lists them only there)", () => {
    const device = fakeDevice({ configs: [] });
    expect(chooseMatrixTile(device, fp16)).toMatchObject({ problem: expect.stringMatching(/no f16 x f16/) });
    const info = { subgroupMinSize: 32, subgroupMaxSize: 32, subgroupMatrixConfigs: [F16_CONFIG] };
    // The tests share one process (isolate: false): the device in use is put back.
    const before = currentDevice();
    setDevice(device, { info } as unknown as GPUAdapter);
    if (before) setDevice(before);
    else releaseDevice();
    expect(chooseMatrixTile(device, fp16)).toMatchObject({ tile: MATRIX_TILES[64] });
  });

  it("takes TE_WEBGPU_FLASH_TILES's matrix tile where it fits, else the table's", () => {
    process.env.TE_WEBGPU_FLASH_TILES = JSON.stringify({ matrix: { bkv: 16, sgw: 4, rot: true } });
    expect(chooseMatrixTile(fakeDevice({}), fp16)).toMatchObject({
      tile: { bkv: 16, sgw: 4, kt: false, rot: true, onePass: false, prefetch: false },
    });
    process.env.TE_WEBGPU_FLASH_TILES = JSON.stringify({ matrix: { bkv: 16, sgw: 8, onePass: true } });
    expect(chooseMatrixTile(fakeDevice({}), fp16)).toMatchObject({
      tile: { bkv: 16, sgw: 8, onePass: true },
    });
    process.env.TE_WEBGPU_FLASH_TILES = JSON.stringify({ matrix: { bkv: 16, sgw: 8, prefetch: true } });
    expect(chooseMatrixTile(fakeDevice({}), fp16)).toMatchObject({
      tile: { prefetch: true, onePass: false },
    });
    process.env.TE_WEBGPU_FLASH_TILES = JSON.stringify({ matrix: { bkv: 16, sgw: 8, onePass: "yes" } });
    expect(chooseMatrixTile(fakeDevice({}), fp16)).toMatchObject({ tile: MATRIX_TILES[64] });
    process.env.TE_WEBGPU_FLASH_TILES = JSON.stringify({ matrix: { bkv: 32, sgw: 8, kt: 1 } });
    expect(chooseMatrixTile(fakeDevice({}), fp16)).toMatchObject({ tile: MATRIX_TILES[64] });
    process.env.TE_WEBGPU_FLASH_TILES = JSON.stringify({ matrix: { bkv: 64, sgw: 16 } });
    expect(chooseMatrixTile(fakeDevice({}), fp16)).toMatchObject({ tile: MATRIX_TILES[64] });
    process.env.TE_WEBGPU_FLASH_TILES = JSON.stringify({ matrix: { bkv: 24, sgw: 4 } });
    expect(chooseMatrixTile(fakeDevice({}), fp16)).toMatchObject({ tile: MATRIX_TILES[64] });
  });
});

describe("K and V as words of two elements", () => {
  const call = (d: number, dv: number, changes: Record<string, number> = {}) => {
    const uniforms: Record<string, number> = {};
    for (const t of ["k", "v"])
      Object.assign(uniforms, {
        [`${t}_off`]: 0,
        [`${t}_sb`]: 4096,
        [`${t}_ss`]: 128,
        [`${t}_sh`]: 64,
        [`${t}_sd`]: 1,
      });
    return { p: { d, dv } as AttentionParams, uniforms: { ...uniforms, ...changes } };
  };
  it("takes contiguous dims whose element pairs share words, and nothing else", () => {
    const withDo = {
      ...call(64, 64, { v_off: 1 }),
      uniforms: { ...call(64, 64, { v_off: 1 }).uniforms, do_off: 0, do_sb: 8, do_ss: 4, do_sh: 2, do_sd: 1 },
    };
    expect(pairsInWords(withDo, ["k", "do"])).toBe(true);
    expect(pairsInWords(withDo, ["v", "do"])).toBe(false);
    expect(pairsInWords(call(64, 64), ["k", "v"])).toBe(true);
    expect(pairsInWords(call(63, 64), ["k", "v"])).toBe(false);
    expect(pairsInWords(call(64, 63), ["k", "v"])).toBe(false);
    // The v of a packed layout one element into its buffer, a strided dim, an odd head stride.
    expect(pairsInWords(call(64, 64, { v_off: 1 }), ["k", "v"])).toBe(false);
    expect(pairsInWords(call(64, 64, { k_sd: 2 }), ["k", "v"])).toBe(false);
    expect(pairsInWords(call(64, 64, { k_sh: 65 }), ["k", "v"])).toBe(false);
    expect(pairsInWords(call(64, 64, { v_ss: 129 }), ["k", "v"])).toBe(false);
  });
});

describe("matrix forward WGSL", () => {
  it("zeroes every accumulator explicitly and declares the workgroup memory it is charged for", () => {
    for (const [dc, tile] of Object.entries(MATRIX_TILES)) {
      const d = Number(dc);
      const code = matrixForwardWgsl(d, d, tile);
      // A bare `var x: subgroup_matrix_result<...>;` in a loop is not re-zeroed per iteration by Dawn on NVIDIA.
      expect(code).not.toMatch(/var \w+\s*:\s*subgroup_matrix/);
      expect(code).toMatch(/var o0 = subgroup_matrix_result<f32, 16, 16>\(\);/);
      const bytes = declaredWorkgroupBytes(code);
      expect(bytes).toBe(matrixBytes(tile, d, d));
    }
  });

  it("one pass: marks the workgroup for the redo, which returns at once where it is not marked", () => {
    const tile = { ...MATRIX_TILES[64], onePass: true };
    const mark = "redo_buf[(wg.z * nwg.y + wg.y) * nwg.x + wg.x]";
    const one = matrixForwardWgsl(64, 64, tile, 16, "one_pass");
    expect(one).toContain(`if (redo) { ${mark} = 1u; }`);
    expect(one).toContain("var redo = false;");
    expect(matrixForwardWgsl(64, 64, tile, 16, "one_pass", true)).toContain("var redo = true;");
    const redo = matrixForwardWgsl(64, 64, tile, 16, "redo");
    // Before anything else, so that the return is uniform and no barrier follows it in non-uniform flow.
    expect(redo).toContain(`) {\n  if (${mark} == 0u) { return; }\n  let bi = wg.z;`);
    expect(matrixForwardWgsl(64, 64, tile, 16, "two_pass")).not.toContain("redo_buf");
    expect(declaredWorkgroupBytes(one)).toBe(matrixBytes(tile, 64, 64));
  });

  it("with padded rows: strides of 16 bytes more in the stores, the fragment loads and the memory charged", () => {
    const tile = { ...MATRIX_TILES[128], pad: true };
    const code = matrixForwardWgsl(128, 64, tile, 16, "one_pass");
    expect(declaredWorkgroupBytes(code)).toBe(matrixBytes(tile, 128, 64));
    expect(matrixBytes(tile, 128, 64)).toBe(
      matrixBytes({ ...tile, pad: false }, 128, 64) + 2 * 8 * (128 + 16 + 128),
    );
    // K^T rows of 16 + 8 keys, V rows of 64 + 8 dims, P rows of 16 + 8 keys.
    expect(code).toMatch(/&sK, \d+u, 24u\)/);
    expect(code).toMatch(/&sV, \d+u, 72u\)/);
    expect(code).toMatch(/&sP, sub \* 384u \+ 0u, 24u\)/);
    expect(code).toContain("sV[(tid / 32u + 0u) * 72u + c0 + 0u]");
  });

  it("with two K/V tiles: stores the next ones around one top barrier and reads the current one's half", () => {
    const tile = { ...MATRIX_TILES[128], prefetch: true, doubleKv: true, words: true, pad: false };
    const code = matrixForwardWgsl(128, 128, tile, 16, "one_pass");
    expect(declaredWorkgroupBytes(code)).toBe(matrixBytes(tile, 128, 128));
    expect(matrixBytes(tile, 128, 128)).toBe(
      matrixBytes({ ...tile, doubleKv: false }, 128, 128) + 2 * 16 * 256,
    );
    const loop = code.slice(code.indexOf("for (var j0"));
    const top = loop.slice(0, loop.indexOf("var s0"));
    // Only one barrier before the products, with K's store ahead of it and V's after it.
    expect(top.match(/workgroupBarrier\(\)/g)).toHaveLength(1);
    expect(top.indexOf("sK[(1u - cur)")).toBeLessThan(top.indexOf("workgroupBarrier()"));
    expect(top.indexOf("sV[(1u - cur)")).toBeGreaterThan(top.indexOf("workgroupBarrier()"));
    expect(loop).toContain(
      "subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>(&sV, cur * 2048u + ",
    );
    // Raw words, each unpacked once: no per-element loads of K or V.
    expect(code).toContain("unpack2x16float(pw_k0)");
    expect(code).not.toMatch(/pf_[kv]\d/);
  });

  const inputs: [string, string, string][] = [
    ["aux", "u32", "read"],
    ["q_buf", "u32", "read"],
    ["k_buf", "u32", "read"],
    ["v_buf", "u32", "read"],
    ["bias_buf", "u32", "read"],
    ["sink_buf", "u32", "read"],
    ["o_buf", "f32", "read_write"],
    ["lse_buf", "f32", "read_write"],
  ];
  const tile = (
    bkv: number,
    kt: boolean,
    rot: boolean,
    prefetch = false,
    more: Pick<MatrixTile, "words" | "doubleKv" | "pad"> = {},
  ): MatrixTile => ({
    bkv,
    sgw: 2,
    kt,
    rot,
    onePass: false,
    prefetch,
    ...more,
    why: "",
  });
  // Small tiles, so that the stand-in's f32 arrays fit SwiftShader's 32 KiB; between them they cover every
  // code path: both K layouts, rotated and plain lane orders of half rows of 8 and 16, dc != dvc.
  const tiles: [number, number, MatrixTile][] = [
    [64, 64, tile(16, false, false)],
    [64, 64, tile(32, false, true)],
    [128, 64, tile(16, true, true, true)],
    [64, 128, tile(16, false, true, true)],
    [128, 64, tile(16, true, true, true, { words: true, doubleKv: true })],
    [64, 128, tile(16, false, false, true, { words: true })],
    [64, 64, tile(32, true, true, true, { doubleKv: true })],
    [64, 64, tile(16, true, true, false, { pad: true })],
    [128, 64, tile(16, false, true, false, { pad: true })],
    [64, 128, tile(16, true, true, true, { words: true, doubleKv: true, pad: true })],
  ];
  // Prefetching tiles: the WGSL only (matrix-harness.ts says why).
  describeStandInCompiles(bindingsOf(inputs), tiles, "two pass: d%i dv%i %o", (dc, dvc, t) => ({
    name: "te.flash_forward_matrix",
    source: () => matrixForwardWgsl(dc, dvc, t),
    moduleOnly: t.prefetch,
  }));
  describeStandInCompiles(
    bindingsOf([...inputs, ["redo_buf", "u32", "read_write"]]),
    tiles,
    "one pass: d%i dv%i %o",
    (dc, dvc, t) => ({
      name: "te.flash_forward_matrix_one_pass",
      source: () => matrixForwardWgsl(dc, dvc, { ...t, onePass: true }, 16, "one_pass"),
      moduleOnly: t.prefetch,
    }),
  );
  describeStandInCompiles(
    bindingsOf([...inputs, ["redo_buf", "u32", "read"]]),
    tiles.slice(0, 2),
    "redo: d%i dv%i %o",
    (dc, dvc, t) => ({
      name: "te.flash_forward_matrix_redo",
      source: () => matrixForwardWgsl(dc, dvc, { ...t, onePass: true }, 16, "redo"),
    }),
  );
});
