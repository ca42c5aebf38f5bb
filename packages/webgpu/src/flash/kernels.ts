/**
 * webgpu.flash: tiled flash attention (forward, and a deterministic two-pass backward) in WGSL.
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
import type { DeviceFacts } from "../limits.js";
import type { Program } from "../program.js";
import type { WebGpuTensor } from "../tensor.js";
import { flashDkDvWgsl, flashDqWgsl } from "./backward-wgsl.js";
import {
  chooseForwardTile,
  FORWARD_TILES,
  type ForwardTile,
  forwardBytes,
  forwardDimClass,
} from "./forward-tiles.js";
import { flashForwardWgsl } from "./forward-wgsl.js";
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
  const info = (device as { adapterInfo?: { subgroupMinSize?: number } }).adapterInfo;
  return device.features.has("subgroups") && (info?.subgroupMinSize ?? 0) >= 4;
}

function forwardTileOrThrow(call: Call, subgroups: boolean): ForwardTile {
  const { p } = call;
  const tile = chooseForwardTile(p.d, p.dv, call.device.limits.maxComputeWorkgroupStorageSize, !subgroups);
  if (!tile)
    throw new Error(
      "webgpu.flash: no forward tile fits the device's workgroup memory (explain() should have said so)",
    );
  return tile;
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
        forwardBytes(
          FORWARD_TILES[FORWARD_TILES.length - 1],
          forwardDimClass(p.d),
          forwardDimClass(p.dv),
          true,
        ),
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

function forward(call: Call, o: GPUBuffer, lse: GPUBuffer): ForwardPlan {
  const { p } = call;
  const subgroups = hasSubgroupRows(call.device);
  const tile = forwardTileOrThrow(call, subgroups);
  const dc = forwardDimClass(p.d);
  const dvc = forwardDimClass(p.dv);
  const bindings = inputBindings(call, ["q", "k", "v"]);
  bindings.push(optionalBinding(call, "sink", call.inputs.softmaxOffset));
  bindings.push(binding("o_buf", o, "f32", "read_write"), binding("lse_buf", lse, "f32", "read_write"));
  const program: Program = {
    name: "te.flash_forward",
    key: `d${dc}.dv${dvc}.q${tile.bq}.k${tile.bk}.m${tile.tm}${tile.sharedKv ? ".kv" : ""}${subgroups ? ".sg" : ""}`,
    source: () => flashForwardWgsl(dc, dvc, tile, subgroups),
    enables: subgroups ? ["subgroups"] : [],
    uniforms: CALL_UNIFORMS,
    uniformValues: call.uniforms,
    bindings,
    workgroups: [Math.ceil(p.sq / tile.bq), p.h, p.b],
  };
  return { programs: [program], scratch: [] };
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

  const kvTile = tileOrThrow("dkdv", call);
  const qTile = tileOrThrow("dq", call);
  const dkdv: Program = {
    name: "te.flash_dkdv",
    key: tileKey(call, kvTile),
    source: () => flashDkDvWgsl(headDimClass(p.d), headDimClass(p.dv), kvTile),
    uniforms: CALL_UNIFORMS,
    uniformValues: { ...call.uniforms, dv_at: dkCount },
    bindings: [...reads, binding("out", kv, "f32", "read_write")],
    workgroups: [Math.ceil(p.skv / kvTile.bk), p.hg, p.b],
  };
  const dq: Program = {
    name: "te.flash_dq",
    key: tileKey(call, qTile),
    source: () => flashDqWgsl(headDimClass(p.d), headDimClass(p.dv), qTile),
    uniforms: CALL_UNIFORMS,
    uniformValues: { ...call.uniforms, dbias_at: dqCount },
    bindings: [...reads, binding("out", q, "f32", "read_write")],
    workgroups: [Math.ceil(p.sq / qTile.bq), p.h, p.b],
  };
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
