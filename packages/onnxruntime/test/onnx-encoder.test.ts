import * as ort from "onnxruntime-node";
import { describe, expect, test } from "vitest";
import { GraphBuilder } from "../src/onnx/graph-builder.js";
import { ProtobufWriter } from "../src/onnx/protobuf-writer.js";

describe("protobuf writer", () => {
  test("varints, negative int64 and floats follow the wire format", () => {
    const bytes = new ProtobufWriter().int(1, 300).int(2, -1).float(3, 1.5).string(4, "é").finish();
    expect([...bytes]).toEqual([
      0x08,
      0xac,
      0x02, // field 1 varint 300
      0x10,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0x01, // field 2: -1 as ten bytes
      0x1d,
      0x00,
      0x00,
      0xc0,
      0x3f, // field 3 fixed32 1.5
      0x22,
      0x02,
      0xc3,
      0xa9, // field 4 "é" in UTF-8
    ]);
  });
});

describe("ONNX model encoding", () => {
  test("ONNX Runtime loads a built model and computes with its inputs, initializers and attributes", async () => {
    const g = new GraphBuilder("encoder_check");
    const x = g.input("x", "float", [2, 3]);
    const scaled = g.mul(g.transpose(x, [1, 0]), g.floats([1, -2], [1, 2]));
    const summed = g.reduceSum(scaled, [0], false);
    g.output("y", g.add(summed, g.float(0.25)), "float", [2]);
    g.output("shape", g.op("Shape", [scaled]), "int64", [2]);
    const session = await ort.InferenceSession.create(
      g.encode({ "": 21 }, { producerName: "test", producerVersion: "0" }),
    );
    const values = Float32Array.from({ length: 6 }, () => Math.random() * 2 - 1);
    const out = await session.run({ x: new ort.Tensor("float32", values, [2, 3]) });
    const rowSum = (r: number) => values[r * 3] + values[r * 3 + 1] + values[r * 3 + 2];
    expect(out.y.data[0]).toBeCloseTo(rowSum(0) + 0.25, 5);
    expect(out.y.data[1]).toBeCloseTo(-2 * rowSum(1) + 0.25, 5);
    expect([...(out.shape.data as BigInt64Array)]).toEqual([3n, 2n]);
  });

  test("unused helper values are pruned from the graph", () => {
    const g = new GraphBuilder("prune");
    const x = g.input("x", "float", [1]);
    g.add(x, g.float(7));
    g.output("y", g.mul(x, g.float(2)), "float", [1]);
    const graph = g.graph();
    expect(graph.nodes.map((n) => n.opType)).toEqual(["Mul", "Identity"]);
    expect(graph.initializers).toHaveLength(1);
  });
});
