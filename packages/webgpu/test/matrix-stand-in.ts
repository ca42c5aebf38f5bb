/**
 * Test helper: the subgroup-matrix forward's WGSL with every matrix type and builtin replaced by a plain-WGSL
 * stand-in (one f32 per lane, f16 as f32), so that a device without subgroup matrices or shader-f16
 * (SwiftShader in CI) can compile it. That checks everything around the matrices: syntax, types, scoping,
 * the barriers' uniformity, the bindings; not what the matrices compute (the GPU machine's conformance does).
 */

/** Splits the arguments of the call whose "(" is at `open` at top-level commas; returns them and the ")" index. */
function callArgs(code: string, open: number): { args: string[]; close: number } {
  const args: string[] = [];
  let depth = 0;
  let start = open + 1;
  for (let i = open; i < code.length; i++) {
    const ch = code[i];
    if (ch === "(") depth++;
    else if (ch === ")" && --depth === 0) {
      args.push(code.slice(start, i).trim());
      return { args, close: i };
    } else if (ch === "," && depth === 1) {
      args.push(code.slice(start, i).trim());
      start = i + 1;
    }
  }
  throw new Error(`unbalanced call at ${open}`);
}

const KINDS = { left: "SmLeft", right: "SmRight", result: "SmResult" } as const;

export function matrixStandIn(code: string): string {
  const helpers = new Map<string, string>();
  let out = code
    .replace(/^enable chromium_experimental_subgroup_matrix;\n/m, "")
    .replace(/^enable f16;\n/m, "")
    .replace(/^diagnostic\(off, chromium\.subgroup_matrix_uniformity\);\n/m, "");
  // Loads: subgroupMatrixLoad<subgroup_matrix_KIND<T, 16, 16>, MAJOR>(&array, offset, stride)
  const load = /subgroupMatrixLoad<subgroup_matrix_(left|right|result)<\w+, 16, 16>, (row|col)_major>\(/g;
  for (let m = load.exec(out); m; m = load.exec(out)) {
    const open = m.index + m[0].length - 1;
    const { args, close } = callArgs(out, open);
    const array = args[0].replace(/^&/, "");
    const kind = KINDS[m[1] as keyof typeof KINDS];
    const name = `sm_load_${m[1]}_${array}`;
    helpers.set(
      name,
      `fn ${name}(off: u32, stride: u32) -> ${kind} { return ${kind}(f32(${array}[off + stride])); }`,
    );
    out = `${out.slice(0, m.index)}${name}(${args[1]}, ${args[2]})${out.slice(close + 1)}`;
    load.lastIndex = m.index;
  }
  const store = /subgroupMatrixStore<row_major>\(/g;
  for (let m = store.exec(out); m; m = store.exec(out)) {
    const open = m.index + m[0].length - 1;
    const { args, close } = callArgs(out, open);
    const array = args[0].replace(/^&/, "");
    const name = `sm_store_${array}`;
    helpers.set(name, `fn ${name}(off: u32, v: SmResult, stride: u32) { ${array}[off + stride] = v.x; }`);
    out = `${out.slice(0, m.index)}${name}(${args[1]}, ${args[2]}, ${args[3]})${out.slice(close + 1)}`;
    store.lastIndex = m.index;
  }
  out = out
    .replace(/subgroup_matrix_(left|right|result)<\w+, 16, 16>/g, (_, k: keyof typeof KINDS) => KINDS[k])
    .replace(/subgroupMatrixMultiplyAccumulate\(/g, "sm_mma(")
    .replace(/\bf16\b/g, "f32");
  const types = Object.values(KINDS)
    .map((k) => `struct ${k} { x: f32 }`)
    .join("\n");
  const mma =
    "fn sm_mma(a: SmLeft, b: SmRight, c: SmResult) -> SmResult { return SmResult(fma(a.x, b.x, c.x)); }";
  // Helpers read module-scope arrays: they go after the last module-scope declaration, before the entry point.
  const entry = out.indexOf("@compute");
  return `${out.slice(0, entry)}${types}\n${mma}\n${[...helpers.values()].join("\n")}\n${out.slice(entry)}`;
}
