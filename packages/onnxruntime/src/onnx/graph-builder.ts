import {
  type AttributeValue,
  encodeModel,
  type GraphSpec,
  type ModelSpec,
  type NodeSpec,
  type OnnxDType,
  type TensorValue,
  type ValueInfo,
} from "./onnx-proto.js";

/** ONNX IR version the models are written with (IR 10 covers opsets up to 22, IR 11 opset 23+). */
const IR_VERSION_OF_OPSET = (opset: number): number => (opset >= 23 ? 11 : opset >= 21 ? 10 : 9);

const rawOf = (array: Float32Array | BigInt64Array | Int32Array | Uint8Array): Uint8Array =>
  new Uint8Array(array.buffer.slice(array.byteOffset, array.byteOffset + array.byteLength));

/**
 * Builds an ONNX graph node by node: each op call adds a node and returns the names of its outputs,
 * so graphs read like the math they compute. Value names are generated and unique.
 */
export class GraphBuilder {
  private readonly nodes: NodeSpec[] = [];
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly initializers: TensorValue[] = [];
  private readonly constants = new Map<string, string>();
  private counter = 0;

  constructor(readonly name: string) {}

  private fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  input(name: string, dtype: OnnxDType, shape: readonly (number | string)[]): string {
    this.inputs.push({ name, dtype, shape });
    return name;
  }

  /** Marks `value` as a graph output named `name` (an Identity node renames it). */
  output(name: string, value: string, dtype: OnnxDType, shape: readonly (number | string)[]): void {
    this.nodes.push({ opType: "Identity", inputs: [value], outputs: [name] });
    this.outputs.push({ name, dtype, shape });
  }

  /** An initializer; identical constants are shared. */
  constant(dtype: OnnxDType, dims: readonly number[], raw: Uint8Array, hint = "const"): string {
    const key = `${dtype}|${dims.join(",")}|${raw.join(",")}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = this.fresh(hint);
    this.initializers.push({ name, dtype, dims, raw });
    this.constants.set(key, name);
    return name;
  }

  int64s(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.constant("int64", dims, rawOf(BigInt64Array.from(values.map((v) => BigInt(v)))), "i64");
  }

  /** An int64 scalar (shape []). */
  int64(value: number): string {
    return this.int64s([value], []);
  }

  floats(values: ArrayLike<number>, dims: readonly number[]): string {
    return this.constant("float", dims, rawOf(Float32Array.from(values)), "f32");
  }

  /** A float scalar (shape []). */
  float(value: number): string {
    return this.floats([value], []);
  }

  /** Adds one node with one output; returns the output's name. */
  op(
    opType: string,
    inputs: readonly string[],
    attributes?: Record<string, AttributeValue>,
    domain?: string,
  ): string {
    return this.opN(opType, inputs, 1, attributes, domain)[0];
  }

  /** Adds one node with `outputs` outputs; returns their names. */
  opN(
    opType: string,
    inputs: readonly string[],
    outputs: number,
    attributes?: Record<string, AttributeValue>,
    domain?: string,
  ): string[] {
    const names = Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase()));
    this.nodes.push({ opType, inputs, outputs: names, attributes, domain });
    return names;
  }

  // Shorthands for the ops attention graphs use most.
  matmul = (a: string, b: string): string => this.op("MatMul", [a, b]);
  add = (a: string, b: string): string => this.op("Add", [a, b]);
  sub = (a: string, b: string): string => this.op("Sub", [a, b]);
  mul = (a: string, b: string): string => this.op("Mul", [a, b]);
  div = (a: string, b: string): string => this.op("Div", [a, b]);
  where = (condition: string, a: string, b: string): string => this.op("Where", [condition, a, b]);
  and = (a: string, b: string): string => this.op("And", [a, b]);
  transpose = (x: string, perm: readonly number[]): string => this.op("Transpose", [x], { perm });
  reshape = (x: string, shape: readonly number[]): string => this.op("Reshape", [x, this.int64s(shape)]);
  unsqueeze = (x: string, axes: readonly number[]): string => this.op("Unsqueeze", [x, this.int64s(axes)]);
  reduceSum = (x: string, axes: readonly number[], keepdims = true): string =>
    this.op("ReduceSum", [x, this.int64s(axes)], { keepdims: keepdims ? 1 : 0 });
  reduceMax = (x: string, axes: readonly number[], keepdims = true): string =>
    this.op("ReduceMax", [x, this.int64s(axes)], { keepdims: keepdims ? 1 : 0 });
  cast = (x: string, to: number): string => this.op("Cast", [x], { to });

  /**
   * The graph, without the nodes and initializers no output depends on (a builder helper may make
   * values a particular graph does not use; ONNX Runtime would warn about each).
   */
  graph(docString?: string): GraphSpec {
    const needed = new Set(this.outputs.map((o) => o.name));
    const nodes: NodeSpec[] = [];
    for (let n = this.nodes.length - 1; n >= 0; n--) {
      const node = this.nodes[n];
      if (!node.outputs.some((o) => needed.has(o))) continue;
      nodes.push(node);
      for (const i of node.inputs) if (i !== "") needed.add(i);
    }
    return {
      name: this.name,
      nodes: nodes.reverse(),
      inputs: this.inputs,
      outputs: this.outputs,
      initializers: this.initializers.filter((t) => needed.has(t.name as string)),
      docString,
    };
  }

  /** The finished model's bytes. `opsets` maps a domain ("" = ai.onnx) to its version. */
  encode(
    opsets: Readonly<Record<string, number>>,
    meta: Pick<ModelSpec, "producerName" | "producerVersion" | "docString" | "metadata">,
  ): Uint8Array {
    return encodeModel({
      graph: this.graph(meta.docString),
      opsets,
      irVersion: IR_VERSION_OF_OPSET(opsets[""] ?? 17),
      ...meta,
    });
  }
}
