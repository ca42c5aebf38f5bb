import {
  ArgumentError,
  type AttentionParams,
  type BiasShape,
  type BiasType,
  checkSetWindowSize,
  evaluateRules,
  isMaskType,
  type MaskType,
  makeParams,
  type QkvLayout,
  qkvFormatOf,
  resolveBottomRightDiagonal,
  type SoftmaxType,
} from "@te/core";
import { fusedOpOf, ORT_FUSED_RULES } from "./backends/ort-fused-rules.js";
import { ORT_NATIVE_RULES } from "./backends/ort-native-rules.js";
import { graphConfigOf } from "./graph/attention-config.js";
import { buildBackwardGraph } from "./graph/backward-graph.js";
import { buildForwardGraph } from "./graph/forward-graph.js";
import { FUSED_GRAPHS } from "./graph/fused-graph.js";
import { NATIVE_OPSET, PRODUCER } from "./graph/model-bytes.js";
import { GraphBuilder } from "./onnx/graph-builder.js";
import type { ValueInfo } from "./onnx/onnx-proto.js";

/** The layouts an exported model takes: q, k and v as three separate inputs. */
const SEPARATE_LAYOUTS: readonly QkvLayout[] = ["bshd_bshd_bshd", "sbhd_sbhd_sbhd", "thd_thd_thd"];

export interface ExportAttentionOptions {
  /** Where to write the .onnx file (Node); without it only the bytes are returned. */
  readonly path?: string;
  /** TE's qkv layout; q, k and v are separate inputs (default bshd_bshd_bshd). */
  readonly layout?: QkvLayout;
  readonly b: number;
  readonly h: number;
  readonly d: number;
  readonly sq: number;
  /** k/v heads (GQA/MQA); default h. */
  readonly hg?: number;
  /** Head dim of v; default d. */
  readonly dv?: number;
  /** Default sq. */
  readonly skv?: number;
  /** thd: total tokens of q and of k/v (rows of the packed inputs). */
  readonly tq?: number;
  readonly tkv?: number;
  readonly mask?: MaskType;
  /** Shape [b|1, h|1] of the arbitrary mask input (default [b, 1]). */
  readonly maskBroadcast?: readonly [number, number];
  readonly window?: readonly [number, number];
  readonly bottomRightDiagonal?: boolean;
  readonly bias?: BiasType;
  readonly biasShape?: BiasShape;
  /** Custom ALiBi slopes, [h] or [b][h], built into the model; default slopes otherwise. */
  readonly alibiSlopes?: readonly number[] | readonly (readonly number[])[];
  readonly softmaxType?: SoftmaxType;
  readonly softmaxScale?: number;
  readonly dtype?: "fp32" | "fp16";
  /** "native": MatMul/Softmax-style graph (default); "fused": ORT's fused attention op. */
  readonly graph?: "native" | "fused";
  /** Whether the forward model also outputs lse (default true); inference models rarely need it. */
  readonly lse?: boolean;
  /** "forward" (default), or the backward graph of ort.native (inputs also o, lse, d_o; outputs dq, dk, dv, ...). */
  readonly pass?: "forward" | "backward";
}

export interface ExportedAttentionModel {
  /** The .onnx file's bytes. */
  readonly bytes: Uint8Array;
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  readonly params: AttentionParams;
  /** Opset per domain ("" = ai.onnx). */
  readonly opsets: Readonly<Record<string, number>>;
  readonly path?: string;
}

function paramsOf(o: ExportAttentionOptions): AttentionParams {
  const layout = o.layout ?? "bshd_bshd_bshd";
  if (!SEPARATE_LAYOUTS.includes(layout)) {
    throw new ArgumentError(
      "layout",
      `one of ${SEPARATE_LAYOUTS.join(", ")} (an exported model takes q, k, v as separate inputs)`,
      layout,
    );
  }
  const format = qkvFormatOf(layout);
  const bias = o.bias ?? "no_bias";
  const usesBiasTensor = bias === "pre_scale_bias" || bias === "post_scale_bias";
  if (usesBiasTensor && !o.biasShape)
    throw new ArgumentError("biasShape", `one of 1hss, b1ss, bhss, 11ss for ${bias}`);
  const skv = o.skv ?? o.sq;
  if (format === "thd" && (o.tq === undefined || o.tkv === undefined)) {
    throw new ArgumentError("tq/tkv", "the total token counts of the packed thd inputs");
  }
  const slopes = o.alibiSlopes;
  const maskType = o.mask ?? "no_mask";
  if (!isMaskType(maskType)) throw new ArgumentError("mask", "one of TE's attn_mask_type names", maskType);
  return makeParams({
    qkvLayout: layout,
    qkvFormat: format,
    dtype: o.dtype ?? "fp32",
    device: "ort",
    b: o.b,
    h: o.h,
    hg: o.hg ?? o.h,
    d: o.d,
    dv: o.dv ?? o.d,
    sq: o.sq,
    skv,
    tq: o.tq ?? o.b * o.sq,
    tkv: o.tkv ?? o.b * skv,
    maskType,
    window: checkSetWindowSize(maskType, o.window, undefined, "window"),
    bottomRightDiagonal: resolveBottomRightDiagonal(maskType, o.bottomRightDiagonal),
    biasType: bias,
    biasShape: usesBiasTensor ? (o.biasShape ?? null) : null,
    biasRequiresGrad: usesBiasTensor && o.pass === "backward",
    alibiSlopes:
      bias !== "alibi" ? null : slopes === undefined ? "default" : Array.isArray(slopes[0]) ? "bh" : "h",
    softmaxType: o.softmaxType ?? "vanilla",
    softmaxScale: o.softmaxScale ?? 1 / Math.sqrt(o.d),
    isTraining: o.pass === "backward",
  });
}

/**
 * Writes attention as a standalone ONNX model that any ONNX tool can load: inputs q, k, v (and
 * cu_seqlens_q/cu_seqlens_kv for padding masks and thd, bias, attn_mask, softmax_offset as the
 * features ask), outputs o and (unless `lse: false`) lse (fp32 [b, h, sq]).
 */
export async function exportAttentionModel(options: ExportAttentionOptions): Promise<ExportedAttentionModel> {
  const p = paramsOf(options);
  const graphKind = options.graph ?? "native";
  const pass = options.pass ?? "forward";
  if (graphKind === "fused" && pass === "backward") {
    throw new ArgumentError("pass", '"forward" for graph "fused" (ORT\'s fused ops have no backward)', pass);
  }
  const verdict = evaluateRules(
    graphKind === "fused" ? ORT_FUSED_RULES : ORT_NATIVE_RULES,
    { ...p, isTraining: false },
    undefined,
  );
  if (!verdict.ok) {
    const why = verdict.reasons.map((r) => `${r.message} [${r.rule}]`).join("; ");
    throw new ArgumentError("options", `a configuration the ${graphKind} graph supports (${why})`);
  }
  const maskShape = options.maskBroadcast ? [...options.maskBroadcast] : undefined;
  const slopes = options.alibiSlopes?.flat() as number[] | undefined;
  if (options.lse === false && pass === "backward") {
    throw new ArgumentError("lse", "true for the backward pass (backward reads the forward's lse)", false);
  }
  const c = {
    ...graphConfigOf(p, maskShape),
    ...(slopes ? { alibiSlopeValues: slopes } : {}),
    ...(options.lse === false ? { withLse: false } : {}),
  };

  const g = new GraphBuilder(`te_attention_${graphKind}_${pass}`);
  let opsets: Record<string, number> = { "": NATIVE_OPSET };
  if (graphKind === "fused") {
    const fused = FUSED_GRAPHS[fusedOpOf(p)];
    fused.build(g, c);
    opsets = fused.opsets;
  } else if (pass === "backward") {
    buildBackwardGraph(g, c);
  } else {
    buildForwardGraph(g, c);
  }
  const docString = `Transformer Engine dot-product attention (${pass}, ${graphKind} graph) exported by @te/onnxruntime`;
  const bytes = g.encode(opsets, {
    ...PRODUCER,
    docString,
    metadata: { te_attention_params: JSON.stringify(p) },
  });
  const graph = g.graph();
  if (options.path) {
    const fs = await import("node:fs/promises");
    await fs.writeFile(options.path, bytes);
  }
  return { bytes, inputs: graph.inputs, outputs: graph.outputs, params: p, opsets, path: options.path };
}
