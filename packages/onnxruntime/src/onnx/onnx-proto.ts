import { ProtobufWriter } from "./protobuf-writer.js";

/**
 * The subset of ONNX's protobuf messages (onnx.proto) that attention graphs use, as plain objects,
 * and their encoding. Field numbers are onnx.proto's.
 */

/** TensorProto.DataType values. */
export const ONNX_DTYPE = {
  float: 1,
  uint8: 2,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  double: 11,
  bfloat16: 16,
} as const;
export type OnnxDType = keyof typeof ONNX_DTYPE;

/** A constant tensor (initializer or attribute value); data is the little-endian raw bytes. */
export interface TensorValue {
  readonly name?: string;
  readonly dtype: OnnxDType;
  readonly dims: readonly number[];
  readonly raw: Uint8Array;
}

/** A graph input or output: its element type and shape (a string names a symbolic dimension). */
export interface ValueInfo {
  readonly name: string;
  readonly dtype: OnnxDType;
  readonly shape: readonly (number | string)[];
}

export type AttributeValue = number | readonly number[] | string | TensorValue | { readonly float: number };

export interface NodeSpec {
  readonly opType: string;
  readonly domain?: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly name?: string;
  /** Integers are INT attributes, `{ float }` FLOAT, arrays INTS, strings STRING, tensors TENSOR. */
  readonly attributes?: Readonly<Record<string, AttributeValue>>;
}

export interface GraphSpec {
  readonly name: string;
  readonly nodes: readonly NodeSpec[];
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  readonly initializers: readonly TensorValue[];
  readonly docString?: string;
}

export interface ModelSpec {
  readonly graph: GraphSpec;
  /** Opset per domain ("" is the default ai.onnx domain). */
  readonly opsets: Readonly<Record<string, number>>;
  readonly irVersion: number;
  readonly producerName: string;
  readonly producerVersion: string;
  readonly docString?: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

// AttributeProto.AttributeType
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_TENSOR = 4;
const ATTR_INTS = 7;

function encodeTensor(w: ProtobufWriter, t: TensorValue): void {
  if (t.dims.length > 0) w.packedInts(1, t.dims);
  w.int(2, ONNX_DTYPE[t.dtype]);
  if (t.name !== undefined) w.string(8, t.name);
  w.bytes(9, t.raw);
}

function encodeValueInfo(w: ProtobufWriter, v: ValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensorType) => {
      tensorType.int(1, ONNX_DTYPE[v.dtype]);
      tensorType.message(2, (shape) => {
        for (const d of v.shape) {
          shape.message(1, (dim) => (typeof d === "number" ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
}

function isTensorValue(x: AttributeValue): x is TensorValue {
  return typeof x === "object" && !Array.isArray(x) && "raw" in x;
}

function encodeAttribute(w: ProtobufWriter, name: string, value: AttributeValue): void {
  w.string(1, name);
  if (typeof value === "number") {
    if (!Number.isInteger(value)) throw new TypeError(`attribute ${name}: use { float } for non-integers`);
    w.int(3, value).int(20, ATTR_INT);
  } else if (typeof value === "string") {
    w.string(4, value).int(20, ATTR_STRING);
  } else if (Array.isArray(value)) {
    w.packedInts(8, value as readonly number[]).int(20, ATTR_INTS);
  } else if (isTensorValue(value)) {
    w.message(5, (t) => encodeTensor(t, value)).int(20, ATTR_TENSOR);
  } else {
    w.float(2, (value as { float: number }).float).int(20, ATTR_FLOAT);
  }
}

function encodeNode(w: ProtobufWriter, n: NodeSpec): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name !== undefined) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [name, value] of Object.entries(n.attributes ?? {}))
    w.message(5, (a) => encodeAttribute(a, name, value));
  if (n.domain) w.string(7, n.domain);
}

function encodeGraph(w: ProtobufWriter, g: GraphSpec): void {
  for (const n of g.nodes) w.message(1, (x) => encodeNode(x, n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, (x) => encodeTensor(x, t));
  if (g.docString) w.string(10, g.docString);
  for (const v of g.inputs) w.message(11, (x) => encodeValueInfo(x, v));
  for (const v of g.outputs) w.message(12, (x) => encodeValueInfo(x, v));
}

/** Encodes a ModelProto: the bytes of a .onnx file. */
export function encodeModel(m: ModelSpec): Uint8Array {
  const w = new ProtobufWriter();
  w.int(1, m.irVersion);
  w.string(2, m.producerName);
  w.string(3, m.producerVersion);
  if (m.docString) w.string(6, m.docString);
  w.message(7, (g) => encodeGraph(g, m.graph));
  for (const [domain, version] of Object.entries(m.opsets)) {
    w.message(8, (o) => {
      o.string(1, domain);
      o.int(2, version);
    });
  }
  for (const [key, value] of Object.entries(m.metadata ?? {})) {
    w.message(14, (e) => {
      e.string(1, key);
      e.string(2, value);
    });
  }
  return w.finish();
}
