import type { InferenceSession, TensorConstructor } from "onnxruntime-common";

/**
 * The ONNX Runtime that runs the attention graphs and makes tensors: onnxruntime-node or
 * onnxruntime-web (each bundles its own copy of onnxruntime-common, so sessions and tensors must
 * come from the one module the application uses; their types are onnxruntime-common's).
 */
export interface OrtModule {
  readonly InferenceSession: {
    create(model: Uint8Array, options?: InferenceSession.SessionOptions): Promise<InferenceSession>;
  };
  readonly Tensor: TensorConstructor;
  readonly env?: { readonly versions?: { readonly common?: string } };
}

export interface OrtRuntimeOptions {
  /**
   * The runtime module (`import * as ort from "onnxruntime-node"` or `"onnxruntime-web"`). When not
   * given, onnxruntime-node is imported on first use, else onnxruntime-web.
   */
  readonly ort?: OrtModule;
  /** Execution providers, in order of preference (e.g. ["cpu"] for onnxruntime-node, ["wasm"] for onnxruntime-web). */
  readonly executionProviders?: InferenceSession.SessionOptions["executionProviders"];
  /** Other session options (threads, graph optimisation level, ...). */
  readonly sessionOptions?: Omit<InferenceSession.SessionOptions, "executionProviders">;
}

let runtimeOptions: OrtRuntimeOptions = {};
let loaded: Promise<OrtModule> | undefined;
let loadedVersion: string | undefined;
const listeners = new Set<() => void>();

/** Sets the runtime, execution providers and session options; sessions made before are dropped. */
export function configureOrtRuntime(options: OrtRuntimeOptions): void {
  runtimeOptions = { ...options };
  loaded = options.ort ? Promise.resolve(options.ort) : undefined;
  loadedVersion = options.ort?.env?.versions?.common;
  for (const listener of listeners) listener();
}

export function ortRuntimeOptions(): OrtRuntimeOptions {
  return runtimeOptions;
}

/** Called when the runtime configuration changes (session caches clear themselves). */
export function onOrtRuntimeChange(listener: () => void): void {
  listeners.add(listener);
}

const RUNTIME_PACKAGES = ["onnxruntime-node", "onnxruntime-web"] as const;

async function importRuntime(): Promise<OrtModule> {
  const failures: string[] = [];
  for (const name of RUNTIME_PACKAGES) {
    try {
      const m = (await import(/* @vite-ignore */ name)) as OrtModule & { default?: OrtModule };
      // A CommonJS package imported from ESM may put its exports on `default`.
      const ort = m.InferenceSession ? m : m.default;
      if (ort?.InferenceSession && ort.Tensor) return ort;
      failures.push(`${name}: no InferenceSession export`);
    } catch (e) {
      failures.push(`${name}: ${(e as Error).message}`);
    }
  }
  throw new Error(
    `no ONNX Runtime could be loaded (${failures.join("; ")}); install onnxruntime-node or onnxruntime-web`,
  );
}

/** The runtime module, loading it on first use. */
export function ortModule(): Promise<OrtModule> {
  loaded ??= importRuntime().then((ort) => {
    loadedVersion = ort.env?.versions?.common;
    return ort;
  });
  return loaded;
}

/** The version of the runtime in use, once it is configured or loaded (selection is synchronous). */
export function ortRuntimeVersion(): string | undefined {
  return loadedVersion;
}

/** Whether `version` (major.minor.patch) is at least major.minor. */
export function versionAtLeast(version: string, major: number, minor: number): boolean {
  const [a, b] = version.split(".").map((x) => Number.parseInt(x, 10));
  return a > major || (a === major && b >= minor);
}

/** Creates a session for model bytes with the configured providers. */
export async function createSession(model: Uint8Array): Promise<InferenceSession> {
  const ort = await ortModule();
  const options: InferenceSession.SessionOptions = { ...runtimeOptions.sessionOptions };
  if (runtimeOptions.executionProviders) options.executionProviders = runtimeOptions.executionProviders;
  return ort.InferenceSession.create(model, options);
}
