import type { MaskTensor, TensorInfo } from "./backend.js";
import { type BiasShape, type BiasType, biasDims, isBiasType } from "./bias.js";
import { cuSeqlensFromPaddingMask, maxSeqlenOf, validateCuSeqlens } from "./cu-seqlens.js";
import { type DType, isDType } from "./dtype.js";
import { type Env, processEnv, readControls } from "./env.js";
import { ArgumentError } from "./errors.js";
import type { DelayedScaling } from "./fp8.js";
import { fp8AttentionMode } from "./fp8-attention.js";
import {
  isQkvFormat,
  isQkvLayout,
  type QkvFormat,
  type QkvLayout,
  qkvFormatOf,
  qkvLayoutGroupOf,
} from "./layout.js";
import { detectQkvLayout } from "./layout-detect.js";
import { isMaskType, isPadding, type MaskType } from "./mask.js";
import type { AttentionParams, Fp8Mode } from "./params.js";
import { isSoftmaxType, type SoftmaxType } from "./softmax.js";
import { checkSetWindowSize, resolveBottomRightDiagonal } from "./window.js";

/**
 * Canonicalisation of one DotProductAttention call: every check TE makes on the arguments, each
 * failure an ArgumentError naming the argument (TE's snake_case names), and the AttentionParams that
 * selection and the backends see. Padding masks become cu_seqlens here. Nothing given is modified.
 */

/** A padding mask: one [b, 1, 1, s] for both q and kv (self attention), or a pair [q mask, kv mask]. */
export type PaddingMaskArgument = MaskTensor | readonly [MaskTensor, MaskTensor];

export interface AttentionCallInfo {
  readonly q: TensorInfo;
  readonly k: TensorInfo;
  readonly v: TensorInfo;
  /** Default "sbhd" (TE's default). */
  readonly qkvFormat?: string;
  /** Detected from q, k, v when absent. */
  readonly qkvLayout?: string;
  /** Default "no_mask". */
  readonly attnMaskType?: string;
  /** Padding masks (padding mask types) or the arbitrary mask [b|1, h|1, sq, skv]; 1 = masked out. */
  readonly attentionMask?: PaddingMaskArgument;
  readonly windowSize?: readonly number[] | null;
  readonly bottomRightDiagonal?: boolean | null;
  readonly cuSeqlensQ?: Int32Array;
  readonly cuSeqlensKv?: Int32Array;
  readonly cuSeqlensQPadded?: Int32Array;
  readonly cuSeqlensKvPadded?: Int32Array;
  readonly maxSeqlenQ?: number;
  readonly maxSeqlenKv?: number;
  /** Default "no_bias". */
  readonly coreAttentionBiasType?: string;
  readonly coreAttentionBias?: TensorInfo;
  readonly biasRequiresGrad?: boolean;
  /** Custom ALiBi slopes, [h] or [b, h] flattened. */
  readonly alibiSlopes?: Float32Array | Float64Array;
  readonly softmaxType?: string;
  readonly softmaxOffset?: TensorInfo;
  /** Default 1 / sqrt(d). */
  readonly softmaxScale?: number;
  readonly attentionDropout?: number;
  readonly isTraining?: boolean;
  /** Constructor arguments the tensors must agree with, when given. */
  readonly numAttentionHeads?: number;
  readonly kvChannels?: number | readonly [number, number];
  readonly numGqaGroups?: number;
  /** The FP8 recipe when FP8 autocast is on. */
  readonly fp8Recipe?: DelayedScaling | null;
  readonly cpSize?: number;
  /** The TensorBridge kind of the tensors; default "host". */
  readonly device?: string;
  /** Where NVTE_* controls are read (default: the process environment). */
  readonly env?: Env;
}

export interface ValidatedCall {
  readonly params: AttentionParams;
  /** Present for thd and padding masks. */
  readonly cuSeqlensQ?: Int32Array;
  readonly cuSeqlensKv?: Int32Array;
  readonly cuSeqlensQPadded?: Int32Array;
  readonly cuSeqlensKvPadded?: Int32Array;
  /** The arbitrary mask. */
  readonly attnMask?: MaskTensor;
  readonly alibiSlopes?: Float32Array | Float64Array;
}

const shapeText = (t: TensorInfo): string => `[${t.shape.join(", ")}]`;

interface Dims {
  b: number;
  s: number;
  heads: number;
  headDim: number;
}

/** b, s, heads, head dim of a tensor in a format (thd: b and s are unknown here, s = tokens). */
function dimsOf(name: string, t: TensorInfo, format: QkvFormat): Dims {
  const rank = format === "thd" ? 3 : 4;
  if (!Array.isArray(t.shape) || t.shape.length !== rank) {
    const layout = format === "thd" ? "[t, h, d]" : format === "bshd" ? "[b, s, h, d]" : "[s, b, h, d]";
    throw new ArgumentError(
      name,
      `a rank-${rank} tensor ${layout} for qkv_format "${format}"`,
      `shape ${shapeText(t)}`,
    );
  }
  if (!t.shape.every((n) => Number.isInteger(n) && n >= 0)) {
    throw new ArgumentError(name, "non-negative integer dims", `shape ${shapeText(t)}`);
  }
  if (format === "thd") return { b: -1, s: t.shape[0], heads: t.shape[1], headDim: t.shape[2] };
  if (format === "bshd") return { b: t.shape[0], s: t.shape[1], heads: t.shape[2], headDim: t.shape[3] };
  return { b: t.shape[1], s: t.shape[0], heads: t.shape[2], headDim: t.shape[3] };
}

function positiveInteger(name: string, x: unknown): number {
  if (typeof x !== "number" || !Number.isInteger(x) || x < 1)
    throw new ArgumentError(name, "an integer >= 1", x);
  return x;
}

function isMaskTensor(x: unknown): x is MaskTensor {
  return (
    typeof x === "object" &&
    x !== null &&
    Array.isArray((x as MaskTensor).shape) &&
    (x as MaskTensor).shape.length === 4 &&
    (x as MaskTensor).data instanceof Uint8Array
  );
}

/** The bias shape name of a bias tensor's dims, or an error naming core_attention_bias. */
function biasShapeOf(t: TensorInfo, b: number, h: number, sq: number, skv: number): BiasShape {
  const dims = t.shape;
  const name =
    `${dims[0] === b && b !== 1 ? "b" : "1"}${dims[1] === h && h !== 1 ? "h" : "1"}ss` as BiasShape;
  const want = biasDims(name, b, h, sq, skv);
  if (dims.length !== 4 || !want.every((n, i) => n === dims[i])) {
    throw new ArgumentError(
      "core_attention_bias",
      `shape [1, ${h}, ${sq}, ${skv}] (1hss), [${b}, 1, ${sq}, ${skv}] (b1ss), [${b}, ${h}, ${sq}, ${skv}] (bhss) or [1, 1, ${sq}, ${skv}] (11ss)`,
      `shape ${shapeText(t)}`,
    );
  }
  return name;
}

/** Validates one call and canonicalises it into AttentionParams. */
export function validateAttentionCall(call: AttentionCallInfo): ValidatedCall {
  const { q, k, v } = call;
  for (const [name, t] of [
    ["query_layer", q],
    ["key_layer", k],
    ["value_layer", v],
  ] as const) {
    if (typeof t !== "object" || t === null || !Array.isArray(t.shape))
      throw new ArgumentError(name, "a tensor", t);
  }

  const format = call.qkvFormat ?? "sbhd";
  if (!isQkvFormat(format)) throw new ArgumentError("qkv_format", '"sbhd", "bshd" or "thd"', format);
  const dq = dimsOf("query_layer", q, format);
  const dk = dimsOf("key_layer", k, format);
  const dvv = dimsOf("value_layer", v, format);

  let layout: QkvLayout;
  if (call.qkvLayout !== undefined) {
    if (!isQkvLayout(call.qkvLayout))
      throw new ArgumentError(
        "qkv_layout",
        "one of TE's 15 layouts (bshd_bshd_bshd, bs3hd, ...)",
        call.qkvLayout,
      );
    if (qkvFormatOf(call.qkvLayout) !== format) {
      throw new ArgumentError("qkv_layout", `a layout of qkv_format "${format}"`, call.qkvLayout);
    }
    // Naming a packed layout promises the views share one buffer; separate views may be given for any.
    const detected = detectQkvLayout(q, k, v, format);
    if (qkvLayoutGroupOf(call.qkvLayout) !== "hd_hd_hd" && detected !== call.qkvLayout) {
      throw new ArgumentError(
        "qkv_layout",
        `q, k, v that form ${call.qkvLayout} (they form ${detected})`,
        call.qkvLayout,
      );
    }
    layout = call.qkvLayout;
  } else {
    layout = detectQkvLayout(q, k, v, format);
  }

  // dtypes
  if (!isDType(q.dtype))
    throw new ArgumentError("query_layer.dtype", "fp32, fp16, bf16, fp8e4m3 or fp8e5m2", q.dtype);
  const dtype: DType = q.dtype;
  if (k.dtype !== dtype)
    throw new ArgumentError("key_layer.dtype", `${dtype} (the dtype of query_layer)`, k.dtype);
  if (v.dtype !== dtype)
    throw new ArgumentError("value_layer.dtype", `${dtype} (the dtype of query_layer)`, v.dtype);

  // heads and head dims
  const h = dq.heads;
  const hg = dk.heads;
  if (h < 1) throw new ArgumentError("query_layer", "at least one head", `shape ${shapeText(q)}`);
  if (v.shape.length && dvv.heads !== hg) {
    throw new ArgumentError("value_layer", `${hg} heads (as key_layer)`, `shape ${shapeText(v)}`);
  }
  if (hg < 1 || h % hg !== 0) {
    throw new ArgumentError(
      "num_gqa_groups",
      `a number of key/value heads dividing the ${h} query heads`,
      hg,
    );
  }
  const d = dq.headDim;
  const dv = dvv.headDim;
  if (dk.headDim !== d)
    throw new ArgumentError("key_layer", `head dim ${d} (as query_layer)`, `shape ${shapeText(k)}`);
  if (d < 1 || dv < 1) throw new ArgumentError("query_layer", "head dims >= 1", `d = ${d}, dv = ${dv}`);
  if (
    call.numAttentionHeads !== undefined &&
    positiveInteger("num_attention_heads", call.numAttentionHeads) !== h
  ) {
    throw new ArgumentError(
      "query_layer",
      `${call.numAttentionHeads} heads (num_attention_heads)`,
      `shape ${shapeText(q)}`,
    );
  }
  if (call.numGqaGroups !== undefined && positiveInteger("num_gqa_groups", call.numGqaGroups) !== hg) {
    throw new ArgumentError(
      "key_layer",
      `${call.numGqaGroups} heads (num_gqa_groups)`,
      `shape ${shapeText(k)}`,
    );
  }
  if (call.kvChannels !== undefined) {
    const [ck, cv] =
      typeof call.kvChannels === "number" ? [call.kvChannels, call.kvChannels] : call.kvChannels;
    positiveInteger("kv_channels", ck);
    positiveInteger("kv_channels", cv);
    if (ck !== d)
      throw new ArgumentError("query_layer", `head dim ${ck} (kv_channels)`, `shape ${shapeText(q)}`);
    if (cv !== dv)
      throw new ArgumentError("value_layer", `head dim ${cv} (kv_channels)`, `shape ${shapeText(v)}`);
  }

  // mask type (thd is always padded: its lengths come from cu_seqlens)
  const givenMask = call.attnMaskType ?? "no_mask";
  if (!isMaskType(givenMask)) {
    throw new ArgumentError(
      "attn_mask_type",
      "no_mask, padding, causal, padding_causal, causal_bottom_right, padding_causal_bottom_right or arbitrary",
      givenMask,
    );
  }
  let maskType: MaskType = givenMask;
  if (format === "thd") {
    if (maskType === "arbitrary")
      throw new ArgumentError(
        "attn_mask_type",
        'a mask type other than "arbitrary" for qkv_format "thd"',
        maskType,
      );
    if (!isPadding(maskType))
      maskType = (maskType === "no_mask" ? "padding" : `padding_${maskType}`) as MaskType;
  }

  // sequence lengths
  let b: number;
  let sq: number;
  let skv: number;
  let tq: number;
  let tkv: number;
  let cuSeqlensQ: Int32Array | undefined;
  let cuSeqlensKv: Int32Array | undefined;
  let cuSeqlensQPadded: Int32Array | undefined;
  let cuSeqlensKvPadded: Int32Array | undefined;
  if (format === "thd") {
    tq = dq.s;
    tkv = dk.s;
    if (dvv.s !== tkv)
      throw new ArgumentError("value_layer", `${tkv} tokens (as key_layer)`, `shape ${shapeText(v)}`);
    if (call.cuSeqlensQ === undefined)
      throw new ArgumentError("cu_seqlens_q", 'an Int32Array [b + 1] for qkv_format "thd"');
    if (call.cuSeqlensKv === undefined)
      throw new ArgumentError("cu_seqlens_kv", 'an Int32Array [b + 1] for qkv_format "thd"');
    b = validateCuSeqlens("cu_seqlens_q", call.cuSeqlensQ).length - 1;
    validateCuSeqlens("cu_seqlens_kv", call.cuSeqlensKv, { b });
    if (call.cuSeqlensQPadded !== undefined)
      validateCuSeqlens("cu_seqlens_q_padded", call.cuSeqlensQPadded, { b, maxTotal: tq });
    if (call.cuSeqlensKvPadded !== undefined)
      validateCuSeqlens("cu_seqlens_kv_padded", call.cuSeqlensKvPadded, { b, maxTotal: tkv });
    sq =
      call.maxSeqlenQ === undefined
        ? maxSeqlenOf(call.cuSeqlensQ)
        : positiveInteger("max_seqlen_q", call.maxSeqlenQ);
    skv =
      call.maxSeqlenKv === undefined
        ? maxSeqlenOf(call.cuSeqlensKv)
        : positiveInteger("max_seqlen_kv", call.maxSeqlenKv);
    validateCuSeqlens("cu_seqlens_q", call.cuSeqlensQ, {
      b,
      maxSeqlen: sq,
      ...(call.cuSeqlensQPadded ? {} : { maxTotal: tq }),
    });
    validateCuSeqlens("cu_seqlens_kv", call.cuSeqlensKv, {
      b,
      maxSeqlen: skv,
      ...(call.cuSeqlensKvPadded ? {} : { maxTotal: tkv }),
    });
    checkPaddedRoom("cu_seqlens_q_padded", call.cuSeqlensQ, call.cuSeqlensQPadded);
    checkPaddedRoom("cu_seqlens_kv_padded", call.cuSeqlensKv, call.cuSeqlensKvPadded);
    cuSeqlensQ = call.cuSeqlensQ;
    cuSeqlensKv = call.cuSeqlensKv;
    cuSeqlensQPadded = call.cuSeqlensQPadded;
    cuSeqlensKvPadded = call.cuSeqlensKvPadded;
    if (call.attentionMask !== undefined)
      throw new ArgumentError(
        "attention_mask",
        'none for qkv_format "thd" (lengths come from cu_seqlens)',
        call.attentionMask,
      );
  } else {
    b = dq.b;
    sq = dq.s;
    skv = dk.s;
    if (dk.b !== b)
      throw new ArgumentError("key_layer", `batch size ${b} (as query_layer)`, `shape ${shapeText(k)}`);
    if (dvv.b !== b || dvv.s !== skv)
      throw new ArgumentError(
        "value_layer",
        `batch size ${b} and ${skv} positions (as key_layer)`,
        `shape ${shapeText(v)}`,
      );
    tq = b * sq;
    tkv = b * skv;
    for (const name of ["cuSeqlensQPadded", "cuSeqlensKvPadded"] as const) {
      if (call[name] !== undefined)
        throw new ArgumentError(snake(name), `none for qkv_format "${format}" (thd only)`, call[name]);
    }
    if (isPadding(maskType)) {
      if (call.attentionMask !== undefined) {
        const [qMask, kvMask] = paddingMasks(call.attentionMask, sq, skv);
        checkMaskDims("attention_mask", qMask, b, sq);
        checkMaskDims("attention_mask", kvMask, b, skv);
        cuSeqlensQ = cuSeqlensFromPaddingMask(qMask);
        cuSeqlensKv = cuSeqlensFromPaddingMask(kvMask);
      } else if (call.cuSeqlensQ !== undefined && call.cuSeqlensKv !== undefined) {
        cuSeqlensQ = validateCuSeqlens("cu_seqlens_q", call.cuSeqlensQ, { b, maxSeqlen: sq });
        cuSeqlensKv = validateCuSeqlens("cu_seqlens_kv", call.cuSeqlensKv, { b, maxSeqlen: skv });
      } else {
        throw new ArgumentError(
          "attention_mask",
          `a padding mask [b, 1, 1, s] (or cu_seqlens_q and cu_seqlens_kv) for attn_mask_type "${maskType}"`,
        );
      }
    }
  }
  if (b < 1) throw new ArgumentError("query_layer", "a batch of at least one sequence", b);

  // arbitrary mask
  let attnMask: MaskTensor | undefined;
  if (maskType === "arbitrary") {
    const m = call.attentionMask;
    if (!isMaskTensor(m))
      throw new ArgumentError(
        "attention_mask",
        `a mask tensor [b|1, h|1, sq, skv] for attn_mask_type "arbitrary"`,
        m,
      );
    const [mb, mh, msq, mskv] = m.shape;
    if (
      (mb !== 1 && mb !== b) ||
      (mh !== 1 && mh !== h) ||
      msq !== sq ||
      mskv !== skv ||
      m.data.length !== mb * mh * msq * mskv
    ) {
      throw new ArgumentError(
        "attention_mask",
        `shape [${b}|1, ${h}|1, ${sq}, ${skv}] with as many elements`,
        `[${m.shape.join(", ")}] (${m.data.length} elements)`,
      );
    }
    attnMask = m;
  } else if (!isPadding(maskType) && call.attentionMask !== undefined) {
    throw new ArgumentError("attention_mask", `none for attn_mask_type "${maskType}"`, call.attentionMask);
  }

  const controls = readControls(call.env ?? processEnv());
  const window = checkSetWindowSize(maskType, call.windowSize, controls);
  const bottomRightDiagonal = resolveBottomRightDiagonal(maskType, call.bottomRightDiagonal);

  // bias and ALiBi
  const biasType = call.coreAttentionBiasType ?? "no_bias";
  if (!isBiasType(biasType))
    throw new ArgumentError(
      "core_attention_bias_type",
      "no_bias, pre_scale_bias, post_scale_bias or alibi",
      biasType,
    );
  let biasShape: BiasShape | null = null;
  const bias = call.coreAttentionBias;
  if (biasType === "pre_scale_bias" || biasType === "post_scale_bias") {
    if (bias === undefined)
      throw new ArgumentError(
        "core_attention_bias",
        `a bias tensor for core_attention_bias_type "${biasType}"`,
      );
    biasShape = biasShapeOf(bias, b, h, sq, skv);
    if (bias.dtype !== dtype)
      throw new ArgumentError("core_attention_bias.dtype", `${dtype} (the dtype of query_layer)`, bias.dtype);
  } else if (bias !== undefined) {
    throw new ArgumentError("core_attention_bias", `none for core_attention_bias_type "${biasType}"`, bias);
  }
  let alibiSlopes: AttentionParams["alibiSlopes"] = null;
  if (biasType === "alibi") {
    const slopes = call.alibiSlopes;
    if (slopes === undefined) alibiSlopes = "default";
    else if (!(slopes instanceof Float32Array || slopes instanceof Float64Array)) {
      throw new ArgumentError(
        "alibi_slopes",
        "a Float32Array or Float64Array of [h] or [b, h] slopes",
        slopes,
      );
    } else if (slopes.length === h) alibiSlopes = "h";
    else if (slopes.length === b * h) alibiSlopes = "bh";
    else
      throw new ArgumentError(
        "alibi_slopes",
        `${h} slopes ([h]) or ${b * h} ([b, h])`,
        `${slopes.length} slopes`,
      );
    if (slopes !== undefined && !slopes.every(Number.isFinite))
      throw new ArgumentError("alibi_slopes", "finite slopes", slopes);
  } else if (call.alibiSlopes !== undefined) {
    throw new ArgumentError(
      "alibi_slopes",
      `none unless core_attention_bias_type is "alibi"`,
      call.alibiSlopes,
    );
  }

  // softmax
  const softmaxType = call.softmaxType ?? "vanilla";
  if (!isSoftmaxType(softmaxType))
    throw new ArgumentError("softmax_type", "vanilla, off_by_one or learnable", softmaxType);
  if (softmaxType === "learnable") {
    const off = call.softmaxOffset;
    if (off === undefined)
      throw new ArgumentError("softmax_offset", 'a [h] tensor for softmax_type "learnable"');
    const n = off.shape.reduce((a, x) => a * x, 1);
    if (n !== h || off.shape.some((x, i) => x !== 1 && !(x === h && (off.shape.length === 1 || i === 1)))) {
      throw new ArgumentError("softmax_offset", `shape [${h}] or [1, ${h}, 1, 1]`, `shape ${shapeText(off)}`);
    }
  } else if (call.softmaxOffset !== undefined) {
    throw new ArgumentError(
      "softmax_offset",
      `none for softmax_type "${softmaxType}" (learnable only)`,
      call.softmaxOffset,
    );
  }
  const softmaxScale = call.softmaxScale ?? 1 / Math.sqrt(d);
  if (typeof softmaxScale !== "number" || !Number.isFinite(softmaxScale) || softmaxScale <= 0) {
    throw new ArgumentError("softmax_scale", "a finite number > 0", softmaxScale);
  }
  const dropoutGiven = call.attentionDropout ?? 0;
  if (typeof dropoutGiven !== "number" || !(dropoutGiven >= 0 && dropoutGiven < 1)) {
    throw new ArgumentError("attention_dropout", "a probability in [0, 1)", dropoutGiven);
  }
  const isTraining = call.isTraining ?? false;
  const cpSize = call.cpSize === undefined ? 1 : positiveInteger("cp_size", call.cpSize);

  // FP8: the recipe's flags, FP8 storage meaning fp8_mha, NVTE_FP8_DPA_BWD for the backward pass
  const fp8: Fp8Mode | null = fp8AttentionMode(call.fp8Recipe ?? null, controls, dtype);

  const softmaxTypeChecked: SoftmaxType = softmaxType;
  const biasTypeChecked: BiasType = biasType;
  const params: AttentionParams = {
    qkvLayout: layout,
    qkvFormat: format,
    dtype,
    device: call.device ?? "host",
    b,
    h,
    hg,
    d,
    dv,
    sq,
    skv,
    tq,
    tkv,
    maskType,
    window,
    bottomRightDiagonal,
    biasType: biasTypeChecked,
    biasShape,
    biasRequiresGrad: biasShape !== null && (call.biasRequiresGrad ?? false),
    alibiSlopes,
    softmaxType: softmaxTypeChecked,
    softmaxScale,
    // TE applies dropout only in training.
    dropout: isTraining ? dropoutGiven : 0,
    isTraining,
    deterministic: !controls.allowNondeterministic,
    paddedThd: cuSeqlensQPadded !== undefined || cuSeqlensKvPadded !== undefined,
    fp8,
    cpSize,
  };
  return {
    params,
    ...(cuSeqlensQ && { cuSeqlensQ }),
    ...(cuSeqlensKv && { cuSeqlensKv }),
    ...(cuSeqlensQPadded && { cuSeqlensQPadded }),
    ...(cuSeqlensKvPadded && { cuSeqlensKvPadded }),
    ...(attnMask && { attnMask }),
    ...(call.alibiSlopes && biasType === "alibi" && { alibiSlopes: call.alibiSlopes }),
  };
}

const snake = (name: string): string => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function checkPaddedRoom(argument: string, cu: Int32Array, padded: Int32Array | undefined): void {
  if (!padded) return;
  for (let i = 0; i + 1 < cu.length; i++) {
    const len = cu[i + 1] - cu[i];
    const room = padded[i + 1] - padded[i];
    if (len > room)
      throw new ArgumentError(argument, `room for the ${len} tokens of sequence ${i}`, `${room} rows`);
  }
}

function paddingMasks(m: PaddingMaskArgument, sq: number, skv: number): [MaskTensor, MaskTensor] {
  if (Array.isArray(m)) {
    if (m.length !== 2 || !isMaskTensor(m[0]) || !isMaskTensor(m[1])) {
      throw new ArgumentError("attention_mask", "a padding mask [b, 1, 1, s] or a pair [q mask, kv mask]", m);
    }
    return [m[0], m[1]];
  }
  if (!isMaskTensor(m))
    throw new ArgumentError("attention_mask", "a padding mask [b, 1, 1, s] or a pair [q mask, kv mask]", m);
  if (sq !== skv) {
    throw new ArgumentError(
      "attention_mask",
      `a pair [q mask [b, 1, 1, ${sq}], kv mask [b, 1, 1, ${skv}]] when sq != skv`,
      `one mask [${m.shape.join(", ")}]`,
    );
  }
  return [m, m];
}

function checkMaskDims(argument: string, m: MaskTensor, b: number, s: number): void {
  const [mb, mh, msq, ms] = m.shape;
  if (mb !== b || mh !== 1 || msq !== 1 || ms !== s) {
    throw new ArgumentError(
      argument,
      `a padding mask of shape [${b}, 1, 1, ${s}]`,
      `[${m.shape.join(", ")}]`,
    );
  }
}
