import { type AttentionInputs, fp16Bits, fp16Value } from "@te/core";
import type { TensorConstructor } from "onnxruntime-common";
import { type AttentionGraphConfig, GRAPH_NAMES as N, usesSeqlens } from "./graph/attention-config.js";
import type { OrtTensor } from "./tensors.js";

export type Feeds = Record<string, OrtTensor>;

/** A tensor (made with the runtime's Tensor) as the ORT type a graph input declares (fp32 ↔ fp16 converted; others passed through). */
export function asType(Tensor: TensorConstructor, t: OrtTensor, type: "float32" | "float16"): OrtTensor {
  if (t.type === type) return t;
  const src = t.data as Float32Array | Uint16Array | Float64Array;
  if (type === "float16")
    return new Tensor(
      "float16",
      Uint16Array.from(src, (x) => fp16Bits(Number(x))),
      t.dims,
    );
  const values =
    t.type === "float16" ? Float32Array.from(src, (bits) => fp16Value(bits)) : Float32Array.from(src);
  return new Tensor("float32", values, t.dims);
}

const storageType = (c: AttentionGraphConfig): "float32" | "float16" =>
  c.dtype === "fp16" ? "float16" : "float32";

/** cu_seqlens of a batch with every sequence full length, for padding masks called without them. */
const fullCuSeqlens = (b: number, s: number): Int32Array =>
  Int32Array.from({ length: b + 1 }, (_, i) => i * s);

/** The feeds of the inputs an attention graph of config `c` declares. */
export function attentionFeeds(
  Tensor: TensorConstructor,
  inputs: AttentionInputs<OrtTensor>,
  c: AttentionGraphConfig,
): Feeds {
  const type = storageType(c);
  const feeds: Feeds = {
    [N.q]: asType(Tensor, inputs.q, type),
    [N.k]: asType(Tensor, inputs.k, type),
    [N.v]: asType(Tensor, inputs.v, type),
  };
  if (usesSeqlens(c)) {
    const cuQ = inputs.cuSeqlensQ ?? fullCuSeqlens(c.b, c.sq);
    const cuKv = inputs.cuSeqlensKv ?? fullCuSeqlens(c.b, c.skv);
    feeds[N.cuSeqlensQ] = new Tensor("int32", Int32Array.from(cuQ), [c.b + 1]);
    feeds[N.cuSeqlensKv] = new Tensor("int32", Int32Array.from(cuKv), [c.b + 1]);
  }
  if (inputs.bias && (c.biasType === "pre_scale_bias" || c.biasType === "post_scale_bias")) {
    feeds[N.bias] = asType(Tensor, inputs.bias, type);
  }
  if (c.alibiSlopes === "h" || c.alibiSlopes === "bh") {
    const slopes = inputs.alibiSlopes as Float32Array | Float64Array;
    feeds[N.alibiSlopes] = new Tensor(
      "float32",
      Float32Array.from(slopes),
      c.alibiSlopes === "h" ? [c.h] : [c.b, c.h],
    );
  }
  if (c.maskBroadcast && inputs.attnMask) {
    feeds[N.attnMask] = new Tensor("bool", inputs.attnMask.data, [...inputs.attnMask.shape]);
  }
  if (c.softmaxType === "learnable" && inputs.softmaxOffset) {
    feeds[N.softmaxOffset] = asType(Tensor, inputs.softmaxOffset, "float32");
  }
  return feeds;
}
