import type { AttentionBackend, Gradients, MaskTensor, SavedForBackward, TensorBridge } from "./backend.js";
import type { BiasType } from "./bias.js";
import type { Env } from "./env.js";
import { ArgumentError, TeError } from "./errors.js";
import { createFp8Meta, type DelayedScaling, type Fp8MetaState } from "./fp8.js";
import { updateAttentionFp8Scales } from "./fp8-attention.js";
import { fp8DeviceStateOf, releaseFp8Meta } from "./fp8-residency.js";
import type { QkvFormat } from "./layout.js";
import type { MaskType } from "./mask.js";
import type { AttentionParams } from "./params.js";
import { hostTensors } from "./reference/host-bridge.js";
import { type SelectionOptions, selectBackend } from "./selection.js";
import type { SoftmaxType } from "./softmax.js";
import { type PaddingMaskArgument, validateAttentionCall } from "./validate.js";

/**
 * TE's DotProductAttention for any tensor type: the constructor takes TE's module arguments, `forward`
 * takes TE's call arguments, validates them (validate.ts), selects a backend for the tensors' kind
 * (selection.ts) and runs it. The tensors' TensorBridge comes from `tensors`; host tensors need none.
 */

export interface DotProductAttentionConfig {
  readonly numAttentionHeads: number;
  /** Head dim of q/k and v: one number for both, or [dk, dv]. */
  readonly kvChannels: number | readonly [number, number];
  /** Number of k/v heads (default numAttentionHeads). */
  readonly numGqaGroups?: number;
  readonly attentionDropout?: number;
  /** Default "sbhd" (TE's default). */
  readonly qkvFormat?: QkvFormat;
  /** Default "causal" (TE's default). */
  readonly attnMaskType?: MaskType;
  readonly windowSize?: readonly [number, number] | null;
  readonly bottomRightDiagonal?: boolean | null;
  /** "self" (one padding mask for q and kv) or "cross" (a pair of masks). */
  readonly attentionType?: "self" | "cross";
  readonly softmaxScale?: number;
  readonly softmaxType?: SoftmaxType;
  /** TE scales scores by 1/layer_number for numerics in its unfused path; kept for the API, results do not change. */
  readonly layerNumber?: number;
  readonly fp8Recipe?: DelayedScaling | null;
  readonly cpSize?: number;
  /** Backend choice overrides (backends, exclude, controls, cudaArch, env). */
  readonly selection?: SelectionOptions;
  readonly env?: Env;
}

export interface DotProductAttentionCallOptions<T> {
  /** The bridge of T; needed for any tensor type other than HostTensor. */
  readonly tensors?: TensorBridge<T>;
  readonly attentionMask?: PaddingMaskArgument;
  readonly qkvFormat?: QkvFormat;
  readonly qkvLayout?: string;
  readonly cuSeqlensQ?: Int32Array;
  readonly cuSeqlensKv?: Int32Array;
  readonly cuSeqlensQPadded?: Int32Array;
  readonly cuSeqlensKvPadded?: Int32Array;
  readonly maxSeqlenQ?: number;
  readonly maxSeqlenKv?: number;
  readonly attnMaskType?: MaskType;
  readonly windowSize?: readonly [number, number] | null;
  readonly bottomRightDiagonal?: boolean | null;
  readonly coreAttentionBiasType?: BiasType;
  readonly coreAttentionBias?: T;
  readonly biasRequiresGrad?: boolean;
  readonly alibiSlopes?: Float32Array | Float64Array;
  readonly softmaxOffset?: T;
  /**
   * TE's fast_zero_fill: whether padding rows of the output may be left unwritten. Every backend here
   * writes zeros there, so results are the same either way.
   */
  readonly fastZeroFillPadding?: boolean;
  /** Whether backward will be asked for (default: the module's `training`). */
  readonly isTraining?: boolean;
  readonly dropoutSeed?: number;
  readonly dropoutOffset?: number;
  readonly selection?: SelectionOptions;
  /** FP8 calls: the recipe state to scale with and record into (default: the module's fp8Meta). */
  readonly fp8Meta?: Fp8MetaState;
}

export interface AttentionOutput<T> {
  readonly output: T;
  /** fp32 [b, h, sq] log-sum-exp of each row's softmax. */
  readonly lse: T;
  readonly params: AttentionParams;
  /** The id of the backend that ran. */
  readonly backend: string;
  /** Gradients of q, k, v (and bias, softmax offset when they have them); once per forward. */
  backward(dO: T): Promise<Gradients<T>>;
  /** Frees the state saved for backward when no backward will come. */
  dispose(): void;
}

const isHostTensor = (x: unknown): boolean =>
  typeof x === "object" &&
  x !== null &&
  ArrayBuffer.isView((x as { data?: unknown }).data) &&
  Array.isArray((x as { strides?: unknown }).strides);

function bridgeFor<T>(q: T, given: TensorBridge<T> | undefined): TensorBridge<T> {
  if (given) return given;
  if (isHostTensor(q)) return hostTensors as unknown as TensorBridge<T>;
  throw new ArgumentError(
    "tensors",
    "the TensorBridge of these tensors ({ tensors: bridge }) for a tensor type other than HostTensor",
  );
}

const randomSeed = (): number => Math.floor(Math.random() * 0x1_0000_0000);

/** TE's DotProductAttention module. */
export class DotProductAttention {
  readonly config: DotProductAttentionConfig;
  /** Like a torch module's training flag: forward saves state for backward and applies dropout. */
  training = true;
  /**
   * The DelayedScaling state of the module's FP8 attention (TE's fp8_meta), when fp8Recipe asks for
   * fp8_dpa or fp8_mha: backends scale with it and record amaxes into it; after each forward (and
   * each FP8 backward) the pass's scales are updated from the amax history, as TE does. A backend may
   * hold it in device memory (cuda.cudnn does): read it with readFp8Meta(module.fp8Meta) before
   * inspecting it (fp8-residency.ts); dispose() frees the device copy.
   */
  readonly fp8Meta: Fp8MetaState | null;

  constructor(config: DotProductAttentionConfig) {
    if (typeof config !== "object" || config === null)
      throw new ArgumentError("config", "DotProductAttention's arguments", config);
    const positive = (name: string, x: unknown) => {
      if (typeof x !== "number" || !Number.isInteger(x) || x < 1)
        throw new ArgumentError(name, "an integer >= 1", x);
    };
    positive("num_attention_heads", config.numAttentionHeads);
    const channels = typeof config.kvChannels === "number" ? [config.kvChannels] : config.kvChannels;
    if (!Array.isArray(channels) || channels.length < 1 || channels.length > 2) {
      throw new ArgumentError("kv_channels", "a head dim or a pair [dk, dv]", config.kvChannels);
    }
    for (const c of channels) positive("kv_channels", c);
    if (config.numGqaGroups !== undefined) {
      positive("num_gqa_groups", config.numGqaGroups);
      if (config.numAttentionHeads % config.numGqaGroups !== 0) {
        throw new ArgumentError(
          "num_gqa_groups",
          `a divisor of num_attention_heads = ${config.numAttentionHeads}`,
          config.numGqaGroups,
        );
      }
    }
    if (
      config.attentionType !== undefined &&
      config.attentionType !== "self" &&
      config.attentionType !== "cross"
    ) {
      throw new ArgumentError("attention_type", '"self" or "cross"', config.attentionType);
    }
    if (config.layerNumber !== undefined) positive("layer_number", config.layerNumber);
    this.config = { ...config };
    const recipe = config.fp8Recipe;
    this.fp8Meta = recipe && (recipe.fp8Dpa || recipe.fp8Mha) ? createFp8Meta(recipe) : null;
  }

  /**
   * Frees what backends hold for the module (the device copy of fp8Meta, downloaded into it first).
   * The module stays usable: a later FP8 call uploads the state again.
   */
  dispose(): void {
    if (this.fp8Meta) releaseFp8Meta(this.fp8Meta);
  }

  train(on = true): this {
    this.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  async forward<T>(
    q: T,
    k: T,
    v: T,
    options: DotProductAttentionCallOptions<T> = {},
  ): Promise<AttentionOutput<T>> {
    const c = this.config;
    const bridge = bridgeFor(q, options.tensors);
    if (c.attentionType === "self" && Array.isArray(options.attentionMask)) {
      throw new ArgumentError(
        "attention_mask",
        'one padding mask [b, 1, 1, s] for attention_type "self"',
        options.attentionMask,
      );
    }
    const isTraining = options.isTraining ?? this.training;
    const call = validateAttentionCall({
      q: bridge.info(q),
      k: bridge.info(k),
      v: bridge.info(v),
      qkvFormat: options.qkvFormat ?? c.qkvFormat ?? "sbhd",
      qkvLayout: options.qkvLayout,
      attnMaskType: options.attnMaskType ?? c.attnMaskType ?? "causal",
      attentionMask: options.attentionMask,
      windowSize: options.windowSize !== undefined ? options.windowSize : c.windowSize,
      bottomRightDiagonal: options.bottomRightDiagonal ?? c.bottomRightDiagonal,
      cuSeqlensQ: options.cuSeqlensQ,
      cuSeqlensKv: options.cuSeqlensKv,
      cuSeqlensQPadded: options.cuSeqlensQPadded,
      cuSeqlensKvPadded: options.cuSeqlensKvPadded,
      maxSeqlenQ: options.maxSeqlenQ,
      maxSeqlenKv: options.maxSeqlenKv,
      coreAttentionBiasType: options.coreAttentionBiasType,
      coreAttentionBias:
        options.coreAttentionBias === undefined ? undefined : bridge.info(options.coreAttentionBias),
      biasRequiresGrad: options.biasRequiresGrad ?? isTraining,
      alibiSlopes: options.alibiSlopes,
      softmaxType: c.softmaxType,
      softmaxOffset: options.softmaxOffset === undefined ? undefined : bridge.info(options.softmaxOffset),
      softmaxScale: c.softmaxScale,
      attentionDropout: c.attentionDropout,
      isTraining,
      numAttentionHeads: c.numAttentionHeads,
      kvChannels: c.kvChannels,
      numGqaGroups: c.numGqaGroups ?? c.numAttentionHeads,
      fp8Recipe: c.fp8Recipe,
      cpSize: c.cpSize,
      device: bridge.kind,
      env: options.selection?.env ?? c.selection?.env ?? c.env,
    });
    if (options.fastZeroFillPadding !== undefined && typeof options.fastZeroFillPadding !== "boolean") {
      throw new ArgumentError("fast_zero_fill", "a boolean", options.fastZeroFillPadding);
    }
    const p = call.params;
    const selectionOptions: SelectionOptions = { ...c.selection, ...options.selection };
    const backend = selectBackend(p, selectionOptions).backend as AttentionBackend<T>;
    const needsSeed = p.dropout > 0;
    const fp8Meta = p.fp8 !== null ? (options.fp8Meta ?? this.fp8Meta ?? undefined) : undefined;
    // A state another backend holds on its device comes back to the host first (the selected backend
    // then reads current values, and uploads them itself if it keeps state on a device).
    const holder = fp8Meta && fp8DeviceStateOf(fp8Meta);
    if (fp8Meta && holder && holder.owner !== backend.id) releaseFp8Meta(fp8Meta);
    const result = await backend.forward(
      {
        q,
        k,
        v,
        ...(call.cuSeqlensQ && { cuSeqlensQ: call.cuSeqlensQ }),
        ...(call.cuSeqlensKv && { cuSeqlensKv: call.cuSeqlensKv }),
        ...(call.cuSeqlensQPadded && { cuSeqlensQPadded: call.cuSeqlensQPadded }),
        ...(call.cuSeqlensKvPadded && { cuSeqlensKvPadded: call.cuSeqlensKvPadded }),
        ...(p.biasShape !== null && { bias: options.coreAttentionBias }),
        ...(call.alibiSlopes && { alibiSlopes: call.alibiSlopes }),
        ...(call.attnMask && { attnMask: call.attnMask as MaskTensor }),
        ...(p.softmaxType === "learnable" && { softmaxOffset: options.softmaxOffset }),
        ...(needsSeed && {
          dropoutSeed: options.dropoutSeed ?? randomSeed(),
          dropoutOffset: options.dropoutOffset ?? 0,
        }),
        ...(fp8Meta && { fp8Meta }),
      },
      p,
    );
    const recipe = c.fp8Recipe;
    if (fp8Meta && recipe) updateAttentionFp8Scales(fp8Meta, recipe, "forward");
    const afterBackward =
      fp8Meta && recipe && p.fp8?.backward
        ? () => updateAttentionFp8Scales(fp8Meta, recipe, "backward")
        : undefined;
    return attentionOutput(backend, result.o, result.lse, result.saved, p, afterBackward);
  }
}

function attentionOutput<T>(
  backend: AttentionBackend<T>,
  output: T,
  lse: T,
  saved: SavedForBackward,
  params: AttentionParams,
  afterBackward?: () => void,
): AttentionOutput<T> {
  // The saved state is released once: by backward (which owns it) or by dispose.
  let state: "saved" | "consumed" = "saved";
  return {
    output,
    lse,
    params,
    backend: backend.id,
    backward(dO: T): Promise<Gradients<T>> {
      if (!params.isTraining) {
        return Promise.reject(
          new ArgumentError(
            "isTraining",
            "true in the forward call whose backward is asked (or a module in training mode)",
            false,
          ),
        );
      }
      if (state !== "saved")
        return Promise.reject(
          new TeError(
            "TE_STATE_RELEASED",
            "backward: the forward state was already used by backward or disposed",
          ),
        );
      state = "consumed";
      if (!afterBackward) return backend.backward(saved, dO, params);
      return backend.backward(saved, dO, params).then((g) => {
        afterBackward();
        return g;
      });
    },
    dispose(): void {
      if (state === "saved") saved.release();
      state = "consumed";
    },
  };
}

export type DotProductAttentionOptions<T> = DotProductAttentionCallOptions<T> &
  Partial<DotProductAttentionConfig> & { readonly numAttentionHeads?: number };

/**
 * The functional form: one call with the module's and the call's arguments together. Head counts
 * and head dims come from the tensors unless given; the mask defaults to "no_mask" and the format to
 * "bshd" here (a functional call has no module defaults to inherit), and isTraining to false.
 */
export async function dotProductAttention<T>(
  q: T,
  k: T,
  v: T,
  options: DotProductAttentionOptions<T> = {},
): Promise<AttentionOutput<T>> {
  const bridge = bridgeFor(q, options.tensors);
  const format = options.qkvFormat ?? "bshd";
  const qs = bridge.info(q).shape;
  const ks = bridge.info(k).shape;
  const vs = bridge.info(v).shape;
  for (const [name, s] of [
    ["query_layer", qs],
    ["key_layer", ks],
    ["value_layer", vs],
  ] as const) {
    if (s.length !== (format === "thd" ? 3 : 4)) {
      throw new ArgumentError(
        name,
        `a rank-${format === "thd" ? 3 : 4} tensor for qkv_format "${format}"`,
        `shape [${s.join(", ")}]`,
      );
    }
  }
  const headDim = (s: readonly number[]) => s[s.length - 1];
  const heads = (s: readonly number[]) => s[s.length - 2];
  const module = new DotProductAttention({
    ...options,
    numAttentionHeads: options.numAttentionHeads ?? heads(qs),
    kvChannels: options.kvChannels ?? [headDim(qs), headDim(vs)],
    numGqaGroups: options.numGqaGroups ?? heads(ks),
    qkvFormat: format,
    attnMaskType: options.attnMaskType ?? "no_mask",
  });
  module.training = options.isTraining ?? false;
  return module.forward(q, k, v, { ...options, tensors: bridge });
}
