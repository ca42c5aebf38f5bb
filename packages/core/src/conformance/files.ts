import { ArgumentError } from "../errors.js";
import { type ConformanceCase, parseCase } from "./case.js";
import { type NpyArray, readNpy } from "./npy.js";

/**
 * Reading a directory of cases. Node's fs is imported on first use, so @te/core stays loadable in
 * browsers (where cases come from elsewhere).
 */
async function fs() {
  return import("node:fs/promises");
}

async function pathJoin(...parts: string[]): Promise<string> {
  const path = await import("node:path");
  return path.join(...parts);
}

/** A case found on disk: its parsed case.json and where its expected results are. */
export interface CaseOnDisk {
  readonly case: ConformanceCase;
  readonly path: string;
}

/** Every folder of `dir` holding a case.json, sorted by folder name. */
export async function listCases(dir: string): Promise<CaseOnDisk[]> {
  const { readdir, readFile, stat } = await fs();
  let entries: string[];
  try {
    entries = (await readdir(dir)).sort();
  } catch (e) {
    throw new ArgumentError(
      "dir",
      "a readable directory of conformance cases",
      `${dir} (${(e as Error).message})`,
    );
  }
  const cases: CaseOnDisk[] = [];
  for (const entry of entries) {
    const path = await pathJoin(dir, entry);
    const file = await pathJoin(path, "case.json");
    if (!(await stat(path)).isDirectory()) continue;
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch {
      continue;
    }
    cases.push({ case: parseCase(JSON.parse(text)), path });
  }
  return cases;
}

/** An expected result of a case (`o`, `lse`, `dq`, ...), or null when the file is absent. */
export async function readExpected(casePath: string, tensor: string): Promise<NpyArray | null> {
  const { readFile } = await fs();
  const file = await pathJoin(casePath, `${tensor}.npy`);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch {
    return null;
  }
  return readNpy(bytes, file);
}
