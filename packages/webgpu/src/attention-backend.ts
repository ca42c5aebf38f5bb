/**
 * An AttentionBackend over a set of WGSL kernels. The flash and unfused backends differ only in the programs
 * that produce o/lse and dQ/dK/dV/dS; the call setup, row statistics, bias and softmax-offset gradients,
 * dtype conversion, eligibility rules shared by both, and the lifetime of saved state live here.
 */
import {
  type AttentionBackend,
  type AttentionInputs,
  type AttentionParams,
  ArgumentError,
  biasDims,
  type ForwardResult,
  type Gradients,
  evaluateRules,
  type Rule,
  type SavedForBackward,
  type TeFamily,
  teRank,
} from "@te/core";
import {
  type Call,
  beginCall,
  binding,
  endCall,
  type F32Region,
  f32Buffer,
  outputsOf,
  tensorBinding,
} from "./attention-call.js";
import { CALL_UNIFORMS, checkShape, put, viewOf } from "./call-layout.js";
import { type DeviceFacts, deviceFacts } from "./limits.js";
import { recycleBuffer } from "./buffer-pool.js";
import { type Program, runPrograms } from "./program.js";
import { webgpuBridge, type WebGpuTensor, wrapBuffer } from "./tensor.js";
import { biasGradWgsl, grid1d, ROW_STATS_WGSL, SINK_GRAD_WGSL } from "./wgsl/elementwise.js";
import { MAX_HEAD_DIM } from "./flash/tiles.js";

export interface ForwardPlan {
  readonly programs: Program[];
  /** Buffers to free once the programs ran. */
  readonly scratch: GPUBuffer[];
}

export interface BackwardPlan extends ForwardPlan {
  readonly dq: F32Region;
  readonly dk: F32Region;
  readonly dv: F32Region;
  /** dS over [b, h, sq, skv] when the bias needs a gradient. */
  readonly ds?: F32Region;
}

export interface Kernels {
  readonly id: string;
  readonly family: TeFamily;
  /** Eligibility rows of this kernel family (the shared rows are added). */
  readonly rules: readonly Rule<DeviceFacts>[];
  /** Programs that write o (f32, in q's format with dv) and lse. */
  forward(call: Call, o: GPUBuffer, lse: GPUBuffer): ForwardPlan;
  /** Programs that write dQ, dK, dV (f32) and, for bias gradients, dS; `stats` holds [lse | D]. */
  backward(call: Call, stats: GPUBuffer, dO: WebGpuTensor): BackwardPlan;
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** Rows every WebGPU backend has. */
export const SHARED_RULES: readonly Rule<DeviceFacts>[] = [
  {
    id: "webgpu.no_device",
    rejects: (_p, c) => c.problem !== null,
    message: (_p, c) => `has no WebGPU device: ${c.problem}`,
  },
  {
    id: "webgpu.fp8",
    rejects: (p) => p.fp8 !== null,
    message: "does not support FP8 attention (no FP8 WGSL kernels)",
  },
  {
    id: "webgpu.context_parallel",
    rejects: (p) => p.cpSize > 1,
    message: "does not support context parallelism (cp_size > 1)",
  },
  {
    id: "webgpu.head_dim",
    rejects: (p) => Math.max(p.d, p.dv) > MAX_HEAD_DIM,
    message: (p) =>
      `does not support head dims d=${p.d}, dv=${p.dv}: kernels are compiled up to ${MAX_HEAD_DIM}`,
  },
  {
    id: "webgpu.alibi_slopes",
    rejects: (p) => p.biasType === "alibi" && p.biasRequiresGrad,
    message: "does not compute gradients of ALiBi slopes",
  },
];

interface Saved extends SavedForBackward {
  readonly call: Call;
  readonly o: GPUBuffer;
  readonly lse: WebGpuTensor;
  released: boolean;
}

export function makeBackend(kernels: Kernels): AttentionBackend<WebGpuTensor> {
  const rules = [...SHARED_RULES, ...kernels.rules];

  async function forward(
    inputs: AttentionInputs<WebGpuTensor>,
    p: AttentionParams,
  ): Promise<ForwardResult<WebGpuTensor>> {
    const call = await beginCall(inputs, p);
    const { device, layout } = call;
    // Zeroed (rows past a sequence's length are never written and must read 0); kept until backward.
    const o = f32Buffer(
      device,
      layout.shapes.o.reduce((a, x) => a * x, 1),
      `${kernels.id}.o32`,
    );
    const lseBuffer = f32Buffer(device, p.b * p.h * p.sq, `${kernels.id}.lse`);
    const plan = kernels.forward(call, o, lseBuffer);
    const outputs = outputsOf(device, [
      { region: { buffer: o, at: 0 }, shape: layout.shapes.o, dtype: call.dtype, label: `${kernels.id}.o` },
    ]);
    try {
      await runPrograms(device, [...plan.programs, ...outputs.programs], outputs.copies);
    } finally {
      for (const b of plan.scratch) recycleBuffer(b);
    }
    const [out] = outputs.tensors;
    const lse = wrapBuffer(lseBuffer, [p.b, p.h, p.sq], "fp32", [p.h * p.sq, p.sq, 1], 0, device);
    const saved: Saved = {
      call,
      o,
      lse,
      released: false,
      release() {
        if (saved.released) return;
        saved.released = true;
        recycleBuffer(o);
        endCall(call);
      },
    };
    return { o: out, lse, saved };
  }

  async function backward(
    savedState: SavedForBackward,
    dO: WebGpuTensor,
    p: AttentionParams,
  ): Promise<Gradients<WebGpuTensor>> {
    const saved = savedState as Saved;
    if (!saved || saved.call === undefined)
      throw new ArgumentError("saved", `the saved state of a ${kernels.id} forward call`, saved);
    if (saved.released)
      throw new ArgumentError("saved", "saved state that was not released yet", "released state");
    const { call } = saved;
    const { device, layout, inputs } = call;
    checkShape("dO", dO, layout.shapes.o);
    if (dO.dtype !== call.dtype) throw new ArgumentError("dO.dtype", call.dtype, dO.dtype);
    const uniforms = { ...call.uniforms };
    put(uniforms, "do", viewOf(dO, p.qkvFormat));
    const withDo: Call = { ...call, uniforms };

    const rows = p.b * p.h * p.sq;
    const stats = f32Buffer(device, 2 * rows, `${kernels.id}.stats`);
    const statsProgram: Program = {
      name: "te.row_stats",
      key: "",
      uniforms: CALL_UNIFORMS,
      source: () => ROW_STATS_WGSL,
      uniformValues: { ...uniforms, count: rows },
      bindings: [
        binding("aux", call.aux, "u32"),
        tensorBinding("do", dO),
        binding("o_buf", saved.o),
        binding("lse_buf", saved.lse.buffer),
        binding("stats", stats, "f32", "read_write"),
      ],
      workgroups: grid1d(rows),
    };
    const plan = kernels.backward(withDo, stats, dO);
    const programs = [statsProgram, ...plan.programs];
    const extraScratch: GPUBuffer[] = [stats];

    const biasGrad =
      p.biasRequiresGrad && (p.biasType === "pre_scale_bias" || p.biasType === "post_scale_bias");
    let dbias32: { buffer: GPUBuffer; shape: number[] } | null = null;
    if (biasGrad && plan.ds && inputs.bias && p.biasShape) {
      const shape = biasDims(p.biasShape, p.b, p.h, p.sq, p.skv);
      const count = shape.reduce((a, x) => a * x, 1);
      const buffer = f32Buffer(device, count, `${kernels.id}.dbias32`);
      extraScratch.push(buffer);
      const batchBroadcast = shape[0] === 1;
      const headBroadcast = shape[1] === 1;
      const pre = p.biasType === "pre_scale_bias";
      programs.push({
        name: "te.bias_grad",
        key: `${batchBroadcast}.${headBroadcast}.${pre}`,
        uniforms: CALL_UNIFORMS,
        source: () => biasGradWgsl(batchBroadcast, headBroadcast, pre),
        uniformValues: { ...uniforms, count, src_at: plan.ds.at },
        bindings: [binding("ds", plan.ds.buffer), binding("out", buffer, "f32", "read_write")],
        workgroups: grid1d(count),
      });
      dbias32 = { buffer, shape };
    }
    let dsink32: GPUBuffer | null = null;
    if (p.softmaxType === "learnable" && inputs.softmaxOffset) {
      dsink32 = f32Buffer(device, p.h, `${kernels.id}.dsink32`);
      extraScratch.push(dsink32);
      programs.push({
        name: "te.softmax_offset_grad",
        key: "",
        uniforms: CALL_UNIFORMS,
        source: () => SINK_GRAD_WGSL,
        uniformValues: uniforms,
        bindings: [
          binding("aux", call.aux, "u32"),
          tensorBinding("sink", inputs.softmaxOffset),
          binding("stats", stats),
          binding("out", dsink32, "f32", "read_write"),
        ],
        workgroups: [p.h, 1, 1],
      });
    }
    try {
      const dtype = call.dtype;
      const items = [
        { region: plan.dq, shape: layout.shapes.dq, dtype, label: `${kernels.id}.dq` },
        { region: plan.dk, shape: layout.shapes.dk, dtype, label: `${kernels.id}.dk` },
        { region: plan.dv, shape: layout.shapes.dv, dtype, label: `${kernels.id}.dv` },
      ];
      if (dbias32 && inputs.bias) {
        items.push({
          region: { buffer: dbias32.buffer, at: 0 },
          shape: dbias32.shape,
          dtype: inputs.bias.dtype,
          label: `${kernels.id}.dbias`,
        });
      }
      if (dsink32 && inputs.softmaxOffset) {
        items.push({
          region: { buffer: dsink32, at: 0 },
          shape: [p.h],
          dtype: inputs.softmaxOffset.dtype,
          label: `${kernels.id}.dsoftmax_offset`,
        });
      }
      const outputs = outputsOf(device, items);
      await runPrograms(device, [...programs, ...outputs.programs], outputs.copies);
      const [dq, dk, dv, ...rest] = outputs.tensors;
      return {
        dq,
        dk,
        dv,
        ...(dbias32 ? { dbias: rest.shift() } : {}),
        ...(dsink32 ? { dSoftmaxOffset: rest.shift() } : {}),
      };
    } finally {
      for (const b of [...plan.scratch, ...extraScratch]) recycleBuffer(b);
      // Backward consumes the saved state, as TE frees its saved tensors after backward.
      saved.release();
    }
  }

  return {
    specificationVersion: "v1",
    id: kernels.id,
    family: kernels.family,
    tensors: webgpuBridge,
    dtypes: ["fp32", "fp16", "bf16"],
    rank: (context) => teRank(kernels.family, context.cudaArch),
    explain: (p) => evaluateRules(rules, p, deviceFacts()),
    forward,
    backward,
  };
}
