// GPU job step (flash-matrix-job.sh): what @te/webgpu's device offers the subgroup-matrix forward, through the
// bundle's packages. Prints the features, subgroup sizes and matrix configurations, and the tile the forward
// and backward passes would take for fp16 d64 and d128 (or why none).
import { adapterInfoOf, chooseMatrixBackwardTile, chooseMatrixTile, getDevice } from "@te/webgpu";

const device = await getDevice();
const info = adapterInfoOf(device);
const shown = (c) => ("problem" in c ? { problem: c.problem } : c.tile);
const choice = (d) => {
  const p = { d, dv: d, dtype: "fp16" };
  return {
    forward: shown(chooseMatrixTile(device, p)),
    dq: shown(chooseMatrixBackwardTile(device, "dq", p)),
    dkdv: shown(chooseMatrixBackwardTile(device, "dkdv", p)),
  };
};
console.log(
  JSON.stringify({
    features: [...device.features].sort(),
    subgroups: [info.subgroupMinSize, info.subgroupMaxSize],
    configs: [...(info.subgroupMatrixConfigs ?? [])].map(
      (c) => `${c.componentType}->${c.resultComponentType} ${c.M}x${c.N}x${c.K}`,
    ),
    workgroupBytes: device.limits.maxComputeWorkgroupStorageSize,
    description: info.description,
    d64: choice(64),
    d128: choice(128),
  }),
);
process.exit(0);
