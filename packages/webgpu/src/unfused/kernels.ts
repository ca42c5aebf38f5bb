/**
 * webgpu.unfused: the straightforward baseline (a scores buffer, a softmax pass, P.V; backward through
 * materialised P and dS). For smaller problems: the [b, h, sq, skv] buffers must fit one storage binding.
 */
import type { Rule } from "@te/core";
import type { BackwardPlan, ForwardPlan, Kernels } from "../attention-backend.js";
import { type Call, binding, f32Buffer, inputBindings, optionalBinding, tensorBinding } from "../attention-call.js";
import { CALL_UNIFORMS } from "../call-layout.js";
import type { DeviceFacts } from "../limits.js";
import type { Program } from "../program.js";
import type { WebGpuTensor } from "../tensor.js";
import { grid1d } from "../wgsl/elementwise.js";
import { DKDV_WGSL, DQ_WGSL, GRAD_SCORES_WGSL, PV_WGSL, SCORES_WGSL, SOFTMAX_WGSL } from "./wgsl.js";

const scoreElements = (p: { b: number; h: number; sq: number; skv: number }): number => p.b * p.h * p.sq * p.skv;

const RULES: readonly Rule<DeviceFacts>[] = [
  {
    id: "webgpu.unfused.scores_size",
    // Backward keeps P and dS in one buffer: twice the scores.
    rejects: (p, c) => scoreElements(p) * 4 * (p.isTraining ? 2 : 1) > c.bindingBytes,
    message: (p, c) =>
      `does not support ${p.b}x${p.h}x${p.sq}x${p.skv} scores: they exceed the ${c.bindingBytes}-byte storage binding limit (use webgpu.flash)`,
  },
];

const WG = 64;

function program(call: Call, name: string, source: string, rest: Pick<Program, "bindings" | "workgroups"> & { uniformValues?: Record<string, number> }): Program {
  return {
    name,
    key: "",
    source: () => source,
    uniforms: CALL_UNIFORMS,
    uniformValues: rest.uniformValues ?? call.uniforms,
    bindings: rest.bindings,
    workgroups: rest.workgroups,
  };
}

function forward(call: Call, o: GPUBuffer, lse: GPUBuffer): ForwardPlan {
  const { p } = call;
  const scores = f32Buffer(call.device, scoreElements(p), "webgpu.unfused.scores");
  const rows = p.b * p.h * p.sq;
  const softmaxBindings = inputBindings(call, []);
  softmaxBindings.push(optionalBinding(call, "sink", call.inputs.softmaxOffset));
  softmaxBindings.push(binding("scores", scores, "f32", "read_write"), binding("lse_buf", lse, "f32", "read_write"));
  return {
    programs: [
      program(call, "te.unfused_scores", SCORES_WGSL, {
        bindings: [...inputBindings(call, ["q", "k"]), binding("scores", scores, "f32", "read_write")],
        workgroups: [Math.ceil(p.skv / WG), p.sq, p.b * p.h],
      }),
      program(call, "te.unfused_softmax", SOFTMAX_WGSL, {
        bindings: softmaxBindings,
        uniformValues: { ...call.uniforms, count: rows },
        workgroups: grid1d(rows),
      }),
      program(call, "te.unfused_pv", PV_WGSL, {
        bindings: [binding("aux", call.aux, "u32"), tensorBinding("v", call.inputs.v), binding("scores", scores), binding("o_buf", o, "f32", "read_write")],
        workgroups: [Math.ceil(p.dv / WG), p.sq, p.b * p.h],
      }),
    ],
    scratch: [scores],
  };
}

function backward(call: Call, stats: GPUBuffer, dO: WebGpuTensor): BackwardPlan {
  const { p, layout, inputs } = call;
  const n = scoreElements(p);
  const count = (shape: number[]) => shape.reduce((a, x) => a * x, 1);
  const dkCount = count(layout.shapes.dk);
  const pds = f32Buffer(call.device, 2 * n, "webgpu.unfused.pds");
  const q = f32Buffer(call.device, count(layout.shapes.dq), "webgpu.unfused.dq");
  const kv = f32Buffer(call.device, dkCount + count(layout.shapes.dv), "webgpu.unfused.dkdv");
  const uniforms = { ...call.uniforms, src_at: n, dv_at: dkCount };
  const aux = binding("aux", call.aux, "u32");
  return {
    programs: [
      program(call, "te.unfused_grad_scores", GRAD_SCORES_WGSL, {
        bindings: [...inputBindings(call, ["q", "k", "v"]), tensorBinding("do", dO), binding("stats", stats), binding("pds", pds, "f32", "read_write")],
        uniformValues: uniforms,
        workgroups: [Math.ceil(p.skv / WG), p.sq, p.b * p.h],
      }),
      program(call, "te.unfused_dq", DQ_WGSL, {
        bindings: [aux, tensorBinding("k", inputs.k), binding("pds", pds), binding("out", q, "f32", "read_write")],
        uniformValues: uniforms,
        workgroups: [Math.ceil(p.d / WG), p.sq, p.b * p.h],
      }),
      program(call, "te.unfused_dkdv", DKDV_WGSL, {
        bindings: [aux, tensorBinding("q", inputs.q), tensorBinding("do", dO), binding("pds", pds), binding("out", kv, "f32", "read_write")],
        uniformValues: uniforms,
        workgroups: [Math.ceil(Math.max(p.d, p.dv) / WG), p.skv, p.b * p.hg],
      }),
    ],
    scratch: [pds, q, kv],
    dq: { buffer: q, at: 0 },
    dk: { buffer: kv, at: 0 },
    dv: { buffer: kv, at: dkCount },
    ds: { buffer: pds, at: n },
  };
}

export const unfusedKernels: Kernels = {
  id: "webgpu.unfused",
  family: "UnfusedDotProductAttention",
  rules: RULES,
  forward,
  backward,
};
