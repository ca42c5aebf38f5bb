/**
 * tilePrefetch and tileWordPrefetch (tile-wgsl.ts) run on the test device: a program fetches a tile of a 16-bit
 * tensor into registers, stores it into workgroup memory and copies that out, and every element must be the
 * tensor's (or zero past its rows and dims). The flash programs that use them compile only on the GPU machine
 * (matrix-harness.ts says why), so this is where their lane plans are checked here.
 */
import { fp16Bits, fp16Value } from "@te/core";
import { beforeAll, describe, expect, it } from "vitest";
import { type TileLoadOptions, tilePrefetch, tileWordPrefetch } from "../src/flash/tile-wgsl.js";
import { type Program, runPrograms } from "../src/program.js";
import { download, upload } from "../src/tensor.js";
import { loadFunction } from "../src/wgsl/storage.js";
import { deviceOrReason } from "./adapter.js";

const FIRST = 16; // the tile's first row
const ROWS = 30; // rows of the tensor that exist (the tile's rows from 30 on read zero)
const STRIDE = 70; // elements between rows (even: words hold element pairs)

interface Case {
  words: boolean;
  n: number;
  cls: number;
  dim: number;
  threads: number;
}

function program(c: Case, k: GPUBuffer, out: GPUBuffer): Program {
  const opts: TileLoadOptions = {
    name: "k",
    array: "tile",
    side: "flat",
    n: c.n,
    cls: c.cls,
    threads: c.threads,
    chunk: 1,
    first: "U.first",
    limit: "U.rows",
    dim: "U.dim",
    index: (row, col) => `(${row}) * U.ss + ${col}`,
    strides: ["U.ss", "1u"],
    target: (r, col) => `tile[(${r}) * ${c.cls}u + ${col}]`,
  };
  const pre = (c.words ? tileWordPrefetch : tilePrefetch)(opts);
  return {
    name: "test.tile_prefetch",
    key: JSON.stringify(c),
    uniforms: [
      ["first", "u32"],
      ["rows", "u32"],
      ["dim", "u32"],
      ["ss", "u32"],
      ["dt", "u32"],
    ],
    uniformValues: { first: FIRST, rows: ROWS, dim: c.dim, ss: STRIDE, dt: 1 },
    bindings: [
      { name: "k_buf", access: "read", element: "u32", buffer: k },
      { name: "out", access: "read_write", element: "f32", buffer: out },
    ],
    workgroups: [1, 1, 1],
    source: () => `${loadFunction("k", "dt")}
var<workgroup> tile: array<f32, ${c.n * c.cls}>;
@compute @workgroup_size(${c.threads})
fn main(@builtin(local_invocation_index) tid: u32) {
  ${pre.regs}
  ${pre.fetch("U.first")}
  ${pre.store}
  workgroupBarrier();
  for (var e = tid; e < ${c.n * c.cls}u; e += ${c.threads}u) { out[e] = tile[e]; }
}
`,
  };
}

const cases: Case[] = [
  { words: false, n: 16, cls: 64, dim: 62, threads: 256 },
  { words: true, n: 16, cls: 64, dim: 62, threads: 256 },
  { words: true, n: 16, cls: 128, dim: 128, threads: 256 },
  { words: true, n: 32, cls: 64, dim: 64, threads: 128 },
];

describe("prefetched tile loads", () => {
  let device: GPUDevice | null = null;
  let reason = "";
  beforeAll(async () => {
    ({ device, reason } = await deviceOrReason());
  });

  it.each(cases)("copy every element once: %o", async (c) => {
    if (!device) {
      console.warn(`skipped: ${reason}`);
      return;
    }
    const count = (FIRST + c.n + 2) * STRIDE;
    const value = (e: number) => fp16Value(fp16Bits(((e * 37) % 1001) / 64 - 7));
    const values = Float32Array.from({ length: count }, (_, e) => value(e));
    const k = await upload(
      { dtype: "fp32", shape: [count], strides: [1], offset: 0, data: values },
      device,
      "fp16",
    );
    const out = device.createBuffer({
      size: c.n * c.cls * 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    });
    await runPrograms(device, [program(c, k.buffer, out)]);
    const got = await download(
      { buffer: out, shape: [c.n * c.cls], dtype: "fp32", strides: [1], offset: 0 },
      device,
    );
    const expected = Float32Array.from({ length: c.n * c.cls }, (_, e) => {
      const [r, col] = [Math.floor(e / c.cls), e % c.cls];
      return FIRST + r < ROWS && col < c.dim ? value((FIRST + r) * STRIDE + col) : 0;
    });
    expect(Array.from(got.data as Float32Array)).toEqual(Array.from(expected));
    k.buffer.destroy();
    out.destroy();
  });
});
