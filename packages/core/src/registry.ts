import type { AttentionBackend } from "./backend.js";
import { ArgumentError } from "./errors.js";

/**
 * The process-wide backend registry. It lives on globalThis under a registered symbol so that two
 * copies of @te/core (ESM and CJS, or two versions) see the same backends.
 */
interface RegistryState {
  readonly backends: Map<string, AttentionBackend<unknown>>;
  version: number;
}

const KEY = Symbol.for("@te/core/registry");

function state(): RegistryState {
  const g = globalThis as unknown as Record<symbol, RegistryState | undefined>;
  let s = g[KEY];
  if (!s) {
    s = { backends: new Map(), version: 0 };
    g[KEY] = s;
  }
  return s;
}

export function registerBackend<T>(backend: AttentionBackend<T>): void {
  if (backend.specificationVersion !== "v1") {
    throw new ArgumentError("backend.specificationVersion", '"v1"', backend.specificationVersion);
  }
  const s = state();
  s.backends.set(backend.id, backend as AttentionBackend<unknown>);
  s.version++;
}

export function unregisterBackend(id: string): boolean {
  const s = state();
  const removed = s.backends.delete(id);
  if (removed) s.version++;
  return removed;
}

export function getBackend(id: string): AttentionBackend<unknown> | undefined {
  return state().backends.get(id);
}

export function listBackends(): AttentionBackend<unknown>[] {
  return [...state().backends.values()];
}

/** Changes whenever a backend is registered or removed (selection's cache depends on it). */
export function registryVersion(): number {
  return state().version;
}

/**
 * Where backends of other packages come from, by id prefix: the CLI and `loadBackendPackage`
 * import the package on demand, and importing it registers its backends.
 */
export const BACKEND_PACKAGES: Readonly<Record<string, string>> = {
  "native.": "@te/native",
  "cuda.": "@te/native",
  "webgpu.": "@te/webgpu",
  "tfjs.": "@te/tfjs",
  "ort.": "@te/onnxruntime",
};

export function packageOfBackend(id: string): string | undefined {
  const prefix = Object.keys(BACKEND_PACKAGES).find((p) => id.startsWith(p));
  return prefix === undefined ? undefined : BACKEND_PACKAGES[prefix];
}
