import { createRequire } from "node:module";
import { type AttentionBackend, BACKEND_PACKAGES, getBackend, packageOfBackend } from "@te/core";

/**
 * Backends of other packages are registered by importing their package; the CLI imports them on
 * demand, so a missing or unbuilt package only matters to the commands that ask for it.
 */

const require = createRequire(import.meta.url);

/** This package's version (dist/te.js sits next to package.json's folder). */
export const CLI_VERSION: string = (() => {
  try {
    return (require("../package.json") as { version: string }).version;
  } catch {
    return "unknown";
  }
})();

/** The packages that may register backends, each once. */
export const BACKEND_PACKAGE_NAMES: readonly string[] = [...new Set(Object.values(BACKEND_PACKAGES))];

export interface PackageStatus {
  readonly name: string;
  readonly loaded: boolean;
  readonly version?: string;
  /** Why it could not be loaded. */
  readonly problem?: string;
}

/** Version of an installed package, from its package.json. */
export function versionOf(name: string): string | undefined {
  try {
    return (require(`${name}/package.json`) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

function explainImportFailure(name: string, e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: string }).code;
  if (code === "ERR_MODULE_NOT_FOUND" && message.includes(`'${name}'`)) {
    return `${name} is not installed (add it to the workspace and run pnpm install)`;
  }
  if (versionOf(name) !== undefined && /dist|Cannot find module/.test(message)) {
    return `${name} is installed but not built (run pnpm build): ${message.split("\n")[0]}`;
  }
  return `${name} failed to load: ${message.split("\n")[0]}`;
}

/**
 * What the CLI, as the application, sets up before a package's tensors can be made: TensorFlow.js needs
 * a backend and its gradient functions (the full @tensorflow/tfjs registers both; the pure-JS "cpu"
 * backend is chosen unless the process already picked one).
 */
const PACKAGE_SETUP: Readonly<Record<string, () => Promise<void>>> = {
  "@te/tfjs": async () => {
    const tf = await import("@tensorflow/tfjs");
    if (!tf.getBackend()) await tf.setBackend("cpu");
    await tf.ready();
  },
  // Asking for the device once up front lets the backends' explain report a missing adapter as a reason
  // (a skip) instead of the first call failing; the failure itself is that reason, so it is not rethrown.
  "@te/webgpu": async () => {
    const webgpu = (await import("@te/webgpu")) as { getDevice?: () => Promise<unknown> };
    await webgpu.getDevice?.().catch(() => undefined);
  },
};

/**
 * Packages whose adapter backends run another package's kernels (ort.te and tfjs.fused run native.cpu):
 * the application imports the kernel package too, so the adapters are eligible; where it is missing, the
 * adapters' explain says so.
 */
const KERNEL_PACKAGES: Readonly<Record<string, readonly string[]>> = {
  "@te/onnxruntime": ["@te/native"],
  "@te/tfjs": ["@te/native"],
};

/** Imports a backend package (which registers its backends) and the kernel packages its adapters use. */
export async function loadPackage(name: string): Promise<PackageStatus> {
  try {
    await import(name);
    for (const kernels of KERNEL_PACKAGES[name] ?? []) await import(kernels).catch(() => undefined);
    await PACKAGE_SETUP[name]?.();
    return { name, loaded: true, version: versionOf(name) };
  } catch (e) {
    return { name, loaded: false, version: versionOf(name), problem: explainImportFailure(name, e) };
  }
}

/** Imports every backend package that is available. */
export async function loadAllPackages(): Promise<PackageStatus[]> {
  const statuses: PackageStatus[] = [];
  for (const name of BACKEND_PACKAGE_NAMES) statuses.push(await loadPackage(name));
  return statuses;
}

/** The backend with this id, importing its package first; throws an Error saying why it is not there. */
export async function backendById(id: string): Promise<AttentionBackend<unknown>> {
  const registered = getBackend(id);
  if (registered) return registered;
  const pkg = packageOfBackend(id);
  if (pkg === undefined) {
    throw new Error(
      `unknown backend "${id}": no package provides it (known prefixes: ${Object.keys(BACKEND_PACKAGES).join(", ")} and "reference")`,
    );
  }
  const status = await loadPackage(pkg);
  if (!status.loaded) throw new Error(`backend "${id}" needs ${pkg}: ${status.problem}`);
  const backend = getBackend(id);
  if (!backend)
    throw new Error(
      `${pkg} loaded but registered no backend "${id}" (it may not be available on this machine)`,
    );
  return backend;
}
