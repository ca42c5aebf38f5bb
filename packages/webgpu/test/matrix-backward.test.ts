/**
 * The subgroup-matrix backward of webgpu.flash: when each pass takes it, and that its WGSL compiles (matrix
 * builtins stood in for, as in matrix-forward.test.ts); what it computes is checked by the conformance cases'
 * gradients on the GPU machine.
 */
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { CALL_UNIFORMS } from "../src/call-layout.js";
import {
  chooseMatrixBackwardTile,
  MATRIX_BACKWARD_TILES,
  type MatrixBackwardPass,
  type MatrixBackwardTile,
  matrixBackwardBytes,
} from "../src/flash/matrix-backward-tiles.js";
import { matrixDkDvWgsl, matrixDqWgsl } from "../src/flash/matrix-backward-wgsl.js";
import { MATRIX_DIRECTIVES, MATRIX_ENABLES } from "../src/flash/matrix-fragments-wgsl.js";
import type { Program } from "../src/program.js";
import { deviceOrReason } from "./adapter.js";
import { bindingsOf, declaredWorkgroupBytes, describeStandInCompiles, fakeDevice } from "./matrix-harness.js";

const fp16 = { d: 64, dv: 64, dtype: "fp16" } as const;
const PASSES: MatrixBackwardPass[] = ["dq", "dkdv"];
const wgsl = (pass: MatrixBackwardPass) => (pass === "dq" ? matrixDqWgsl : matrixDkDvWgsl);

describe("matrix backward eligibility", () => {
  afterEach(() => {
    delete process.env.TE_WEBGPU_FLASH_MATRIX;
    delete process.env.TE_WEBGPU_FLASH_MATRIX_BACKWARD;
    delete process.env.TE_WEBGPU_FLASH_TILES;
  });

  it.each(PASSES)(
    "%s takes fp16 up to head dim 128 with the table's tile, says why not otherwise",
    (pass) => {
      expect(chooseMatrixBackwardTile(fakeDevice({}), pass, fp16)).toMatchObject({
        dc: 64,
        dvc: 64,
        tile: MATRIX_BACKWARD_TILES[pass][64],
      });
      expect(chooseMatrixBackwardTile(fakeDevice({}), pass, { d: 128, dv: 64, dtype: "fp16" })).toMatchObject(
        {
          dc: 128,
          dvc: 64,
          tile: MATRIX_BACKWARD_TILES[pass][128],
        },
      );
      const problem = (device: GPUDevice, p: Parameters<typeof chooseMatrixBackwardTile>[2] = fp16) =>
        (chooseMatrixBackwardTile(device, pass, p) as { problem?: string }).problem;
      expect(problem(fakeDevice({}), { ...fp16, dtype: "fp32" })).toMatch(/dtype fp32/);
      expect(problem(fakeDevice({}), { ...fp16, dv: 256 })).toMatch(/above 128/);
      expect(problem(fakeDevice({ subgroups: [16, 32] }))).toMatch(/subgroups of 16-32 lanes/);
      expect(problem(fakeDevice({ workgroupBytes: 8192 }))).toMatch(/workgroup memory/);
      process.env.TE_WEBGPU_FLASH_MATRIX = "0";
      expect(problem(fakeDevice({}))).toMatch(/TE_WEBGPU_FLASH_MATRIX=0/);
    },
  );

  it("takes TE_WEBGPU_FLASH_TILES's matrix_dq / matrix_dkdv tiles where they fit", () => {
    process.env.TE_WEBGPU_FLASH_TILES = JSON.stringify({
      matrix_dq: { cols: 16, sgw: 8 },
      matrix_dkdv: { cols: 64, sgw: 8 },
    });
    expect(chooseMatrixBackwardTile(fakeDevice({}), "dq", fp16)).toMatchObject({
      tile: { cols: 16, sgw: 8 },
    });
    // 64 x 8 needs more than 48 KiB: the table's tile runs.
    expect(chooseMatrixBackwardTile(fakeDevice({}), "dkdv", fp16)).toMatchObject({
      tile: MATRIX_BACKWARD_TILES.dkdv[64],
    });
  });
});

describe("matrix backward WGSL", () => {
  it.each(PASSES)(
    "%s zeroes its accumulators and declares the workgroup memory it is charged for",
    (pass) => {
      for (const [cls, tile] of Object.entries(MATRIX_BACKWARD_TILES[pass])) {
        const d = Number(cls);
        const code = wgsl(pass)(d, d, tile);
        expect(code).not.toMatch(/var \w+\s*:\s*subgroup_matrix/);
        expect(declaredWorkgroupBytes(code)).toBe(matrixBackwardBytes(pass, tile, d, d));
      }
    },
  );

  it("pads the staged rows by 16 bytes: column tiles, f16 operands and their fragment loads", () => {
    const tile = { cols: 16, sgw: 4, pad: true, why: "" };
    const dq = matrixDqWgsl(128, 64, tile);
    expect(dq).toContain("var<workgroup> sK: array<f16, 2176>;");
    expect(dq).toContain("var<workgroup> sV: array<f16, 1152>;");
    expect(dq).toContain("var<workgroup> sP: array<f16, 1536>;");
    expect(dq).toMatch(/col_major>\(&sK, \d+u, 136u\)/);
    expect(dq).toMatch(/row_major>\(&sP, sub \* 384u \+ 0u, 24u\)/);
    expect(declaredWorkgroupBytes(dq)).toBe(matrixBackwardBytes("dq", tile, 128, 64));
    const dkdv = matrixDkDvWgsl(64, 128, tile);
    expect(dkdv).toMatch(/row_major>\(&sG, \d+u, 136u\)/);
    expect(dkdv).toContain("sT[pt] = ");
    expect(declaredWorkgroupBytes(dkdv)).toBe(matrixBackwardBytes("dkdv", tile, 64, 128));
  });

  describeStandInCompiles(
    bindingsOf([
      ["aux", "u32", "read"],
      ["q_buf", "u32", "read"],
      ["k_buf", "u32", "read"],
      ["v_buf", "u32", "read"],
      ["bias_buf", "u32", "read"],
      ["do_buf", "u32", "read"],
      ["stats", "f32", "read"],
      ["out", "f32", "read_write"],
    ]),
    // Small tiles (the stand-in's f32 arrays must fit SwiftShader's 32 KiB), dc != dvc both ways.
    [
      ["dq", 64, 64, { cols: 16, sgw: 2, why: "" }],
      ["dq", 128, 64, { cols: 32, sgw: 1, why: "" }],
      ["dkdv", 64, 64, { cols: 16, sgw: 2, why: "" }],
      ["dkdv", 64, 128, { cols: 16, sgw: 1, why: "" }],
      ["dq", 64, 128, { cols: 16, sgw: 2, pad: true, why: "" }],
      ["dkdv", 128, 64, { cols: 16, sgw: 1, pad: true, why: "" }],
      ["dq", 64, 64, { cols: 16, sgw: 2, pad: true, words: true, why: "" }],
      ["dkdv", 64, 128, { cols: 16, sgw: 1, pad: true, words: true, why: "" }],
    ] as [MatrixBackwardPass, number, number, MatrixBackwardTile][],
    "%s d%i dv%i %o",
    (pass: MatrixBackwardPass, dc: number, dvc: number, tile: MatrixBackwardTile) => ({
      name: `te.flash_${pass}_matrix`,
      source: () => wgsl(pass)(dc, dvc, tile, { words: tile.words === true }),
      // Word loads: the WGSL only (SwiftShader's compiler does not finish them; matrix-harness.ts).
      moduleOnly: tile.words === true,
    }),
  );
});
