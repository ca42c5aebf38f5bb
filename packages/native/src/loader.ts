import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { NativeBinding } from "./binding.js";

/** The package root: src/ and dist/ both sit one level below it. */
function packageRoot(): string {
  const here = typeof __dirname === "string" ? __dirname : path.dirname(fileURLToPath(import.meta.url));
  return path.resolve(here, "..");
}

/** Where the addon may be: TE_NATIVE_ADDON, then the CMake outputs of this package. */
export function addonCandidates(): string[] {
  const root = packageRoot();
  const env = process.env.TE_NATIVE_ADDON;
  return [
    ...(env ? [path.resolve(env)] : []),
    path.join(root, "build", "Release", "te_native.node"),
    path.join(root, "build", "Debug", "te_native.node"),
  ];
}

/**
 * Loading a broken addon can take the process down (a bad ABI, a missing symbol at load), so each
 * candidate is first loaded in a child process; only one that loads there is loaded here.
 */
function smokeTest(file: string): string | null {
  const script = `const a = require(${JSON.stringify(file)}); if (!String(a.backends()).includes("cpu")) process.exit(3);`;
  const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 30_000 });
  if (r.status === 0) return null;
  const why = (r.stderr || r.error?.message || "").trim().split("\n").slice(0, 3).join(" ");
  return `exit ${r.status ?? r.signal}${why ? `: ${why}` : ""}`;
}

let loaded: NativeBinding | undefined;
let failure: Error | undefined;

/** The addon, loaded once; throws an error listing every candidate tried and why it failed. */
export function loadBinding(): NativeBinding {
  if (loaded) return loaded;
  if (failure) throw failure;
  const tried: string[] = [];
  for (const file of addonCandidates()) {
    if (!existsSync(file)) {
      tried.push(`${file} (not found)`);
      continue;
    }
    const why = smokeTest(file);
    if (why !== null) {
      tried.push(`${file} (failed to load in a child process, ${why})`);
      continue;
    }
    const require = createRequire(path.join(packageRoot(), "package.json"));
    loaded = require(file) as NativeBinding;
    return loaded;
  }
  failure = new Error(
    `@te/native: no usable te_native.node; tried:\n  ${tried.join("\n  ")}\nBuild it with \`pnpm --filter @te/native build\`.`,
  );
  throw failure;
}

/** The addon, or undefined when it cannot be loaded (with the reason in loadError()). */
export function tryLoadBinding(): NativeBinding | undefined {
  try {
    return loadBinding();
  } catch {
    return undefined;
  }
}

export function loadError(): Error | undefined {
  return failure;
}
