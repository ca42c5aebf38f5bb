/**
 * The GPUDevice the kernels run on. A caller that already has a device (tfjs-webgpu, onnxruntime-web, its own)
 * hands it over with `setDevice`, so their buffers can be used without copies; otherwise `getDevice` asks
 * `navigator.gpu` (browsers) or Dawn's Node binding (the optional `webgpu` package) for one.
 */
import { BackendError } from "@te/core";

/** Features the kernels can use when the adapter has them. */
// chromium-experimental-subgroup-matrix: webgpu.flash's forward on the tensor cores (flash/matrix-tiles.ts); adapters
// list it only with Dawn's allow_unsafe_apis toggle (Node: TE_WEBGPU_DAWN_FLAGS) or Chrome's unsafe-WebGPU flag.
const OPTIONAL_FEATURES: readonly GPUFeatureName[] = [
  "shader-f16",
  "subgroups",
  "chromium-experimental-subgroup-matrix",
  // For recordPassTimes (pass-times.ts); no cost unless a recording is open.
  "timestamp-query",
] as GPUFeatureName[];

interface DeviceState {
  device: GPUDevice | null;
  /** Why no device could be had (no navigator.gpu, no adapter, ...); null while none was asked for. */
  problem: string | null;
  pending: Promise<GPUDevice> | null;
  /**
   * The GPU and adapter a requested device came from. Dawn's Node binding tears its instance down when the GPU
   * object is garbage-collected, which crashes the process while the device is still in use: keep them.
   */
  origin: { gpu: GPU; adapter: GPUAdapter } | null;
  /** The adapter facts of the devices this module requested or was handed with their adapter (`adapterInfoOf`). */
  adapterInfo: WeakMap<GPUDevice, GPUAdapterInfo>;
}

/** Process-wide, like the backend registry: every copy of this module uses the same device. */
const STATE = Symbol.for("@te/webgpu/device");
const processGlobals = globalThis as Record<symbol, unknown>;
if (processGlobals[STATE] === undefined) {
  processGlobals[STATE] = {
    device: null,
    problem: null,
    pending: null,
    origin: null,
    adapterInfo: new WeakMap(),
  } satisfies DeviceState;
}
const state = processGlobals[STATE] as DeviceState;

/**
 * Uses the caller's device for every call that does not name its own. Pass the adapter it came from where there
 * is one: some facts the kernels use (subgroup-matrix configurations) are only on the adapter's info.
 */
export function setDevice(device: GPUDevice, adapter?: GPUAdapter): void {
  if (adapter) state.adapterInfo.set(device, adapter.info);
  state.device = device;
  state.problem = null;
  state.pending = null;
}

/** The device in use, or null when none was set or requested yet. */
export function currentDevice(): GPUDevice | null {
  return state.device;
}

/** Why no device is available, after `getDevice` failed; null otherwise. */
export function deviceProblem(): string | null {
  return state.problem;
}

async function findGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  const isNode =
    typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node ===
    "string";
  if (!isNode) throw new Error("this browser has no navigator.gpu (WebGPU is off or unsupported)");
  let dawn: { create(options: string[]): GPU; globals: object };
  try {
    // A variable specifier keeps bundlers from pulling Dawn's native binding into browser bundles.
    const specifier = "webgpu";
    dawn = (await import(/* @vite-ignore */ specifier)) as typeof dawn;
  } catch (e) {
    throw new Error(
      `Node has no WebGPU: the optional package "webgpu" (Dawn) could not be loaded (${(e as Error).message})`,
    );
  }
  // Dawn's GPUBufferUsage, GPUMapMode, ... constants; keep whatever the host already defines.
  const g = globalThis as Record<string, unknown>;
  for (const [name, value] of Object.entries(dawn.globals)) if (!(name in g)) g[name] = value;
  return dawn.create(dawnFlags());
}

/**
 * Flags for Dawn's Node instance from TE_WEBGPU_DAWN_FLAGS, separated by spaces, such as
 * "enable-dawn-features=disable_workgroup_init" (Dawn toggles, for benchmarks on a GPU machine); none by default.
 */
function dawnFlags(): string[] {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return (env?.TE_WEBGPU_DAWN_FLAGS ?? "").split(/\s+/).filter((flag) => flag.length > 0);
}

/** SwiftShader's Vulkan driver as Debian's chromium package installs it. */
const SWIFTSHADER_ICD = "/usr/lib/chromium/vk_swiftshader_icd.json";

/**
 * Node without a GPU: when no adapter is found and the caller chose no Vulkan driver, try SwiftShader's (the
 * Vulkan loader reads VK_DRIVER_FILES when Dawn creates its instance, so setting it here still takes effect).
 */
async function swiftShaderFallback(): Promise<{ gpu: GPU; adapter: GPUAdapter } | null> {
  const proc = (
    globalThis as { process?: { env: Record<string, string | undefined>; versions?: { node?: string } } }
  ).process;
  if (!proc?.versions?.node || proc.env.VK_DRIVER_FILES || proc.env.VK_ICD_FILENAMES) return null;
  const specifier = "node:fs";
  const fs = (await import(/* @vite-ignore */ specifier)) as { existsSync(path: string): boolean };
  if (!fs.existsSync(SWIFTSHADER_ICD)) return null;
  proc.env.VK_DRIVER_FILES = SWIFTSHADER_ICD;
  const gpu = await findGpu();
  const adapter = await gpu.requestAdapter();
  return adapter ? { gpu, adapter } : null;
}

/** Where the Vulkan loader looks for drivers when VK_DRIVER_FILES is unset (Linux). */
const SYSTEM_ICD_DIRS = ["/etc/vulkan/icd.d", "/usr/share/vulkan/icd.d", "/usr/local/share/vulkan/icd.d"];

/**
 * Whether asking Dawn for an adapter can find a driver: with no driver installed anywhere the loader prints
 * "Found no drivers" warnings for nothing, so Node on a CPU-only machine goes straight to SwiftShader.
 */
async function mayHaveVulkanDriver(): Promise<boolean> {
  const proc = (globalThis as { process?: { env: Record<string, string | undefined>; platform?: string } })
    .process;
  if (proc?.platform !== "linux" || proc.env.VK_DRIVER_FILES || proc.env.VK_ICD_FILENAMES) return true;
  const specifier = "node:fs";
  const fs = (await import(/* @vite-ignore */ specifier)) as { readdirSync(path: string): string[] };
  return SYSTEM_ICD_DIRS.some((dir) => {
    try {
      return fs.readdirSync(dir).some((f) => f.endsWith(".json"));
    } catch {
      return false;
    }
  });
}

async function requestDevice(): Promise<GPUDevice> {
  let gpu: GPU | undefined;
  let adapter: GPUAdapter | null = null;
  if (await mayHaveVulkanDriver()) {
    gpu = await findGpu();
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  }
  if (!adapter) {
    const fallback = await swiftShaderFallback();
    if (fallback) ({ gpu, adapter } = fallback);
  }
  if (!adapter || !gpu) {
    throw new Error(
      "no WebGPU adapter (on CPU-only Debian: apt-get install chromium libvulkan1, or run with LD_LIBRARY_PATH=/usr/lib/chromium " +
        "for chromium's Vulkan loader; SwiftShader's driver is then found at /usr/lib/chromium/vk_swiftshader_icd.json)",
    );
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  // The largest workgroups, workgroup memory and buffers the adapter allows: bigger tiles, larger problems.
  const requiredLimits: Record<string, number> = {
    maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: adapter.limits.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    maxBufferSize: adapter.limits.maxBufferSize,
    maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage,
  };
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  state.origin = { gpu, adapter };
  state.adapterInfo.set(device, adapter.info);
  return device;
}

/**
 * What the adapter behind `device` reports. Dawn lists some facts (subgroupMatrixConfigs) only on the adapter's
 * info, not on device.adapterInfo: the adapter's where this module requested the device or was handed its adapter
 * (setDevice), else device.adapterInfo.
 */
export function adapterInfoOf(device: GPUDevice): Partial<GPUAdapterInfo> & Record<string, unknown> {
  return (state.adapterInfo.get(device) ??
    (device as { adapterInfo?: GPUAdapterInfo }).adapterInfo ??
    {}) as Partial<GPUAdapterInfo> & Record<string, unknown>;
}

/** The device in use; requests one on first use. Rejects with a BackendError saying why none can be had. */
export async function getDevice(): Promise<GPUDevice> {
  if (state.device) return state.device;
  if (!state.pending) {
    state.pending = requestDevice().then(
      (device) => {
        state.device = device;
        state.problem = null;
        return device;
      },
      (e: unknown) => {
        state.problem = (e as Error).message;
        state.pending = null;
        throw new BackendError("webgpu", state.problem, "TE_NO_DEVICE", { cause: e });
      },
    );
  }
  return state.pending;
}

/** Releases the device this package requested (not one set by the caller, which the caller owns). */
export function releaseDevice(): void {
  state.device = null;
  state.pending = null;
}
