// Which Dawn toggles make shader-f16 appear on this adapter, and does an f16 shader run correctly with it.
import * as dawn from "webgpu";
for (const [name, value] of Object.entries(dawn.globals)) if (!(name in globalThis)) globalThis[name] = value;
const sets = [[], ["enable-dawn-features=vulkan_enable_f16_on_nvidia"]];
const out = [];
for (const toggles of sets) {
  const r = { toggles };
  try {
    const gpu = dawn.create(toggles);
    const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    r.features = [...adapter.features].sort();
    if (adapter.features.has("shader-f16")) {
      const device = await adapter.requestDevice({ requiredFeatures: ["shader-f16"] });
      const code = `enable f16;
@group(0) @binding(0) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  let a = vec4<f16>(f16(g.x) * 0.5h, 1.5h, 2.0h, 3.0h);
  let b = vec4<f16>(2.0h, f16(g.x), 0.25h, 1.0h);
  o[g.x] = f32(dot(a, b));
}`;
      const module = device.createShaderModule({ code });
      const info = await module.getCompilationInfo();
      r.compile = info.messages.map((m) => m.message);
      const pipeline = device.createComputePipeline({
        layout: "auto",
        compute: { module, entryPoint: "main" },
      });
      const buf = device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
      const read = device.createBuffer({
        size: 256,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(
        0,
        device.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: [{ binding: 0, resource: { buffer: buf } }],
        }),
      );
      pass.dispatchWorkgroups(1);
      pass.end();
      enc.copyBufferToBuffer(buf, 0, read, 0, 256);
      device.queue.submit([enc.finish()]);
      await read.mapAsync(GPUMapMode.READ);
      const got = new Float32Array(read.getMappedRange().slice(0));
      let bad = 0;
      for (let x = 0; x < 64; x++)
        if (Math.abs(got[x] - (x * 0.5 * 2 + 1.5 * x + 0.5 + 3)) > 1e-3 * (1 + x)) bad++;
      r.run = { bad, sample: [...got.slice(0, 4)] };
      device.destroy();
    }
  } catch (e) {
    r.error = String(e?.message ?? e);
  }
  out.push(r);
}
console.log(JSON.stringify(out, null, 1));
process.exit(0);
