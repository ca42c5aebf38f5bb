/**
 * webgpu.flash: register-tiled flash attention in WGSL (forward, and a deterministic two-pass backward; the
 * scalar backward of backward-wgsl.ts where the tiled one does not fit the workgroup memory).
 */
import type { AttentionParams, Rule } from "@te/core";
import type { BackwardPlan, ForwardPlan, Kernels } from "../attention-backend.js";
import {
  binding,
  type Call,
  f32Buffer,
  inputBindings,
  optionalBinding,
  tensorBinding,
} from "../attention-call.js";
import { CALL_UNIFORMS } from "../call-layout.js";
import { adapterInfoOf } from "../device.js";
import type { DeviceFacts } from "../limits.js";
import type { Binding, Program } from "../program.js";
import type { WebGpuTensor } from "../tensor.js";
import {
  type BackwardPass,
  chooseBackwardTile,
  flashDkDvTiledWgsl,
  flashDqTiledWgsl,
} from "./backward-tiled-wgsl.js";
import { flashDkDvWgsl, flashDqWgsl } from "./backward-wgsl.js";
import {
  chooseForwardTile,
  dimClass,
  FORWARD_TILES,
  type ForwardChoice,
  forwardBytes,
  tileProfile,
} from "./forward-tiles.js";
import { flashForwardWgsl } from "./forward-wgsl.js";
import { chooseMatrixBackwardTile } from "./matrix-backward-tiles.js";
import { matrixDkDvWgsl, matrixDqWgsl } from "./matrix-backward-wgsl.js";
import { type MatrixForwardVariant, matrixForwardWgsl } from "./matrix-forward-wgsl.js";
import { MATRIX_DIRECTIVES, MATRIX_ENABLES } from "./matrix-fragments-wgsl.js";
import { chooseMatrixTile, matrixRows } from "./matrix-tiles.js";
import { classLoops, loadBatch, prefetch, redoAll } from "./switches.js";
import { backwardOverride, forwardOverride } from "./tile-override.js";
import { chooseTile, type FlashPass, headDimClass, PASS_BYTES, TILES, type Tile } from "./tiles.js";

function tileOrThrow(pass: FlashPass, call: Call): Tile {
  const tile = chooseTile(pass, call.p.d, call.p.dv, call.device.limits.maxComputeWorkgroupStorageSize);
  if (!tile)
    throw new Error(
      `webgpu.flash: no ${pass} tile fits the device's workgroup memory (explain() should have said so)`,
    );
  return tile;
}

/**
 * Whether the forward can reduce rows with subgroup shuffles: the device has subgroups of at least four lanes
 * (a row group's four consecutive invocations then share one subgroup).
 */
export function hasSubgroupRows(device: GPUDevice): boolean {
  const info = adapterInfoOf(device);
  return device.features.has("subgroups") && (info.subgroupMinSize ?? 0) >= 4;
}

function forwardTileOrThrow(call: Call, subgroups: boolean): ForwardChoice {
  const { p } = call;
  const limit = call.device.limits.maxComputeWorkgroupStorageSize;
  const choice = chooseForwardTile(p.d, p.dv, limit, !subgroups, tileProfile(call.device));
  if (!choice)
    throw new Error(
      "webgpu.flash: no forward tile fits the device's workgroup memory (explain() should have said so)",
    );
  return choice;
}

const tileKey = (call: Call, t: Tile): string =>
  `d${headDimClass(call.p.d)}.dv${headDimClass(call.p.dv)}.q${t.bq}.k${t.bk}`;

function smallestNeed(pass: FlashPass, p: AttentionParams): number {
  const smallest = TILES[TILES.length - 1];
  return PASS_BYTES[pass](smallest, headDimClass(p.d), headDimClass(p.dv));
}

const RULES: readonly Rule<DeviceFacts>[] = [
  {
    id: "webgpu.flash.workgroup_memory",
    rejects: (p, c) =>
      chooseForwardTile(p.d, p.dv, c.workgroupBytes, true) === null ||
      (p.isTraining &&
        (chooseTile("dkdv", p.d, p.dv, c.workgroupBytes) === null ||
          chooseTile("dq", p.d, p.dv, c.workgroupBytes) === null)),
    message: (p, c) =>
      `does not fit head dims d=${p.d}, dv=${p.dv} in ${c.workgroupBytes} bytes of workgroup memory (the smallest tile needs ${Math.max(
        forwardBytes(FORWARD_TILES[FORWARD_TILES.length - 1], dimClass(p.d), dimClass(p.dv), true),
        p.isTraining ? Math.max(smallestNeed("dkdv", p), smallestNeed("dq", p)) : 0,
      )})${c.fromDevice ? "" : "; that is WebGPU's default limit: await getDevice() or setDevice() first to use the adapter's"}`,
  },
  {
    id: "webgpu.flash.dbias_scratch",
    rejects: (p, c) => p.isTraining && p.biasRequiresGrad && p.b * p.h * p.sq * p.skv * 4 > c.bindingBytes,
    message: (p, c) =>
      `does not support bias gradients of ${p.b}x${p.h}x${p.sq}x${p.skv}: dS over [b, h, sq, skv] exceeds the ${c.bindingBytes}-byte storage binding limit`,
  },
];

/**
 * Whether the 16-bit `tensors` can be read as 32-bit words of two elements (tileWordPrefetch): dims
 * contiguous, every element pair (2c, 2c + 1) in one word.
 */
export function pairsInWords(
  call: Pick<Call, "p" | "uniforms">,
  tensors: readonly ("q" | "k" | "v" | "do")[],
): boolean {
  const u = call.uniforms;
  const even = (...xs: number[]) => xs.every((x) => x % 2 === 0);
  return (
    even(call.p.d, call.p.dv) &&
    tensors.every((t) => u[`${t}_sd`] === 1 && even(u[`${t}_off`], u[`${t}_sb`], u[`${t}_ss`], u[`${t}_sh`]))
  );
}

/**
 * The forward on subgroup matrices where the device and call qualify (matrix-tiles.ts), else null: the
 * two-pass program, or the one-pass program and the redo of the workgroups it marked (matrix-forward-wgsl.ts).
 */
function matrixForward(call: Call, bindings: Binding[]): ForwardPlan | null {
  const { p } = call;
  const choice = chooseMatrixTile(call.device, p);
  if ("problem" in choice) return null;
  const { dc, dvc } = choice;
  const tile = { ...choice.tile, words: choice.tile.words === true && pairsInWords(call, ["k", "v"]) };
  const batch = loadBatch();
  const flags = (["kt", "rot", "prefetch", "words", "doubleKv", "pad"] as const).filter(
    (f) => tile[f] === true,
  );
  const key = `d${dc}.dv${dvc}.k${tile.bkv}.w${tile.sgw}${flags.map((f) => `.${f}`).join("")}.lb${batch}`;
  const workgroups: [number, number, number] = [Math.ceil(p.sq / matrixRows(tile)), p.h, p.b];
  const program = (variant: MatrixForwardVariant, extra: Binding[], all = false): Program => ({
    name: `te.flash_forward_matrix${variant === "two_pass" ? "" : `_${variant}`}`,
    key: `${key}.${variant}${all ? ".all" : ""}`,
    source: () => matrixForwardWgsl(dc, dvc, tile, batch, variant, all),
    enables: MATRIX_ENABLES,
    directives: MATRIX_DIRECTIVES,
    uniforms: CALL_UNIFORMS,
    uniformValues: call.uniforms,
    bindings: [...bindings, ...extra],
    workgroups,
  });
  if (!tile.onePass) return { programs: [program("two_pass", [])], scratch: [] };
  // One mark per workgroup; WebGPU zeroes new buffers.
  const marks = f32Buffer(call.device, workgroups[0] * workgroups[1] * workgroups[2], "webgpu.flash.redo");
  return {
    programs: [
      program("one_pass", [binding("redo_buf", marks, "u32", "read_write")], redoAll()),
      program("redo", [binding("redo_buf", marks, "u32", "read")]),
    ],
    scratch: [marks],
  };
}

function forward(call: Call, o: GPUBuffer, lse: GPUBuffer): ForwardPlan {
  const { p } = call;
  const bindings = inputBindings(call, ["q", "k", "v"]);
  bindings.push(optionalBinding(call, "sink", call.inputs.softmaxOffset));
  bindings.push(binding("o_buf", o, "f32", "read_write"), binding("lse_buf", lse, "f32", "read_write"));
  const matrix = matrixForward(call, bindings);
  if (matrix) return matrix;
  const subgroups = hasSubgroupRows(call.device);
  const chosen = forwardTileOrThrow(call, subgroups);
  const { dc, dvc } = chosen;
  const tile = forwardOverride(call.device, dc, dvc, !subgroups) ?? chosen.tile;
  const unrolled = tileProfile(call.device) === "throughput";
  const loops = unrolled && classLoops();
  const pipelined = !tile.sharedKv && prefetch();
  const batch = loadBatch();
  const program: Program = {
    name: "te.flash_forward",
    key: `d${dc}.dv${dvc}.q${tile.bq}.k${tile.bk}.m${tile.tm}${tile.sharedKv ? ".kv" : ""}${subgroups ? ".sg" : ""}${unrolled ? ".u" : ""}${loops ? ".cl" : ""}${pipelined ? ".pf" : ""}.lb${batch}`,
    source: () => flashForwardWgsl(dc, dvc, tile, subgroups, unrolled, loops, pipelined, batch),
    enables: subgroups ? ["subgroups"] : [],
    uniforms: CALL_UNIFORMS,
    uniformValues: call.uniforms,
    bindings,
    workgroups: [Math.ceil(p.sq / tile.bq), p.h, p.b],
  };
  return { programs: [program], scratch: [] };
}

/**
 * A backward pass: on subgroup matrices where the device and call qualify (matrix-backward-tiles.ts), else the
 * register-tiled program where one of its tiles fits the device's workgroup memory for the
 * head-dim classes, else the scalar program with its small tiles (head dim 256 within 32 KiB).
 */
function backwardProgram(
  call: Call,
  pass: BackwardPass,
  io: { reads: Binding[]; out: GPUBuffer; uniforms: Record<string, number>; rows: number; heads: number },
): Program {
  const { p } = call;
  const profile = tileProfile(call.device);
  const dc = dimClass(p.d, profile);
  const dvc = dimClass(p.dv, profile);
  const limit = call.device.limits.maxComputeWorkgroupStorageSize;
  const tiled =
    backwardOverride(call.device, pass, dc, dvc) ?? chooseBackwardTile(pass, dc, dvc, limit, profile);
  const common = {
    name: `te.flash_${pass}`,
    uniforms: CALL_UNIFORMS,
    uniformValues: { ...call.uniforms, ...io.uniforms },
    bindings: [...io.reads, binding("out", io.out, "f32", "read_write")],
  };
  const matrix = chooseMatrixBackwardTile(call.device, pass, p);
  if (!("problem" in matrix)) {
    const { tile: mt, dc: mdc, dvc: mdvc } = matrix;
    const batch = loadBatch();
    // The column tiles: K and V for dQ, Q and dO for dK/dV.
    const words = mt.words === true && pairsInWords(call, pass === "dq" ? ["k", "v"] : ["q", "do"]);
    return {
      ...common,
      name: `te.flash_${pass}_matrix`,
      key: `d${mdc}.dv${mdvc}.c${mt.cols}.w${mt.sgw}${mt.pad ? ".pad" : ""}${words ? ".words" : ""}.lb${batch}`,
      source: () =>
        (pass === "dq" ? matrixDqWgsl : matrixDkDvWgsl)(mdc, mdvc, mt, { loadBatch: batch, words }),
      enables: MATRIX_ENABLES,
      directives: MATRIX_DIRECTIVES,
      workgroups: [Math.ceil(io.rows / (16 * mt.sgw)), io.heads, p.b],
    };
  }
  if (tiled) {
    const unrolled = profile === "throughput";
    const loops = unrolled && classLoops();
    const batch = loadBatch();
    return {
      ...common,
      key: `tiled.d${dc}.dv${dvc}.r${tiled.r}.c${tiled.c}.m${tiled.tm}${unrolled ? ".u" : ""}${loops ? ".cl" : ""}.lb${batch}`,
      source: () =>
        (pass === "dq" ? flashDqTiledWgsl : flashDkDvTiledWgsl)(dc, dvc, tiled, unrolled, loops, batch),
      workgroups: [Math.ceil(io.rows / tiled.r), io.heads, p.b],
    };
  }
  const tile = tileOrThrow(pass, call);
  const rowsPerGroup = pass === "dq" ? tile.bq : tile.bk;
  return {
    ...common,
    key: tileKey(call, tile),
    source: () => (pass === "dq" ? flashDqWgsl : flashDkDvWgsl)(headDimClass(p.d), headDimClass(p.dv), tile),
    workgroups: [Math.ceil(io.rows / rowsPerGroup), io.heads, p.b],
  };
}

function backward(call: Call, stats: GPUBuffer, dO: WebGpuTensor): BackwardPlan {
  const { p, layout } = call;
  const count = (shape: number[]) => shape.reduce((a, x) => a * x, 1);
  const dkCount = count(layout.shapes.dk);
  const dqCount = count(layout.shapes.dq);
  const biasGrad = call.uniforms.bias_grad !== 0;
  const dsCount = biasGrad ? p.b * p.h * p.sq * p.skv : 0;
  const kv = f32Buffer(call.device, dkCount + count(layout.shapes.dv), "webgpu.flash.dkdv");
  const q = f32Buffer(call.device, dqCount + dsCount, "webgpu.flash.dq");
  const reads = [...inputBindings(call, ["q", "k", "v"]), tensorBinding("do", dO), binding("stats", stats)];

  const dkdv = backwardProgram(call, "dkdv", {
    reads,
    out: kv,
    uniforms: { dv_at: dkCount },
    rows: p.skv,
    heads: p.hg,
  });
  const dq = backwardProgram(call, "dq", {
    reads,
    out: q,
    uniforms: { dbias_at: dqCount },
    rows: p.sq,
    heads: p.h,
  });
  return {
    programs: [dkdv, dq],
    scratch: [kv, q],
    dq: { buffer: q, at: 0 },
    dk: { buffer: kv, at: 0 },
    dv: { buffer: kv, at: dkCount },
    ...(biasGrad ? { ds: { buffer: q, at: dqCount } } : {}),
  };
}

export const flashKernels: Kernels = {
  id: "webgpu.flash",
  family: "FlashAttention",
  rules: RULES,
  forward,
  backward,
};
