// What Dawn's adapter offers on this machine: features with and without the allow_unsafe_apis toggle (which
// unlocks experimental ones such as chromium-experimental-subgroup-matrix), subgroup sizes, subgroup-matrix
// configurations (cooperative matrices: M x N x K and component types) and the limits the kernels size tiles by.
// Runs where the `webgpu` package resolves (the GPU bundle); prints one JSON object.
import * as dawn from "webgpu";

async function describe(toggles) {
  const gpu = dawn.create(toggles);
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) return { toggles, adapter: null };
  const info = adapter.info;
  const configs = (info.subgroupMatrixConfigs ?? []).map((c) => ({
    M: c.M,
    N: c.N,
    K: c.K,
    componentType: c.componentType,
    resultComponentType: c.resultComponentType,
  }));
  const limits = {};
  for (const k of [
    "maxComputeWorkgroupStorageSize",
    "maxComputeInvocationsPerWorkgroup",
    "maxStorageBufferBindingSize",
    "maxBufferSize",
    "maxStorageBuffersPerShaderStage",
  ])
    limits[k] = adapter.limits[k];
  let device = null;
  const wanted = ["shader-f16", "subgroups", "chromium-experimental-subgroup-matrix"].filter((f) =>
    adapter.features.has(f),
  );
  try {
    const d = await adapter.requestDevice({ requiredFeatures: wanted });
    device = { features: [...d.features].sort() };
    d.destroy();
  } catch (e) {
    device = { error: e.message };
  }
  return {
    toggles,
    vendor: info.vendor,
    device: info.device,
    description: info.description,
    subgroupMinSize: info.subgroupMinSize,
    subgroupMaxSize: info.subgroupMaxSize,
    features: [...adapter.features].sort(),
    subgroupMatrixConfigs: configs,
    limits,
    requested: wanted,
    deviceWithThem: device,
  };
}

const out = [];
for (const toggles of [[], ["enable-dawn-features=allow_unsafe_apis"]]) {
  try {
    out.push(await describe(toggles));
  } catch (e) {
    out.push({ toggles, error: e.message });
  }
}
console.log(JSON.stringify(out, null, 1));
process.exit(0);
