import { ArgumentError } from "../errors.js";

/** An array read from a .npy file: its shape and its values (float32 or float64, C order). */
export interface NpyArray {
  readonly shape: readonly number[];
  readonly data: Float32Array | Float64Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/**
 * Parses a NumPy .npy file (format versions 1-3) of little-endian float32 or float64 values in C order,
 * any shape (the conformance cases store float32).
 */
export function readNpy(bytes: Uint8Array, name = "npy"): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new ArgumentError(name, "a .npy file (magic \\x93NUMPY)");
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
    bytes.subarray(headerStart, headerStart + headerLength),
  );
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr !== "<f4" && descr !== "<f8") throw new ArgumentError(`${name} dtype`, "'<f4' or '<f8'", descr);
  if (fortran !== "False") throw new ArgumentError(`${name} fortran_order`, "False (C order)", fortran);
  if (shapeText === undefined) throw new ArgumentError(`${name} header`, "a 'shape' entry", header);
  const shape = shapeText
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const itemSize = descr === "<f4" ? 4 : 8;
  const dataStart = headerStart + headerLength;
  if (bytes.length - dataStart < count * itemSize) {
    throw new ArgumentError(
      name,
      `${count * itemSize} bytes of data for shape (${shape})`,
      bytes.length - dataStart,
    );
  }
  const data = descr === "<f4" ? new Float32Array(count) : new Float64Array(count);
  for (let n = 0; n < count; n++) {
    data[n] =
      itemSize === 4 ? view.getFloat32(dataStart + 4 * n, true) : view.getFloat64(dataStart + 8 * n, true);
  }
  return { shape, data };
}
