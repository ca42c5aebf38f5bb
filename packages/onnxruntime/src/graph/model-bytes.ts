import { GraphBuilder } from "../onnx/graph-builder.js";
import type { AttentionGraphConfig } from "./attention-config.js";

export const PRODUCER = { producerName: "@te/onnxruntime", producerVersion: "0.1.0" } as const;

/** Opset of the framework-native graphs: 18+ for ReduceMax's axes input; 21 is what IR 10 pairs with. */
export const NATIVE_OPSET = 21;

/** Builds a graph with `build` and encodes it as a model of the default domain at `opset` (+ extra domains). */
export function modelBytes(
  name: string,
  c: AttentionGraphConfig,
  build: (g: GraphBuilder, c: AttentionGraphConfig) => void,
  opsets: Readonly<Record<string, number>> = { "": NATIVE_OPSET },
  docString?: string,
): Uint8Array {
  const g = new GraphBuilder(name);
  build(g, c);
  return g.encode(opsets, { ...PRODUCER, docString, metadata: { te_attention_config: JSON.stringify(c) } });
}
