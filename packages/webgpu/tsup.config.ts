import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  // Dawn's Node binding is optional: browsers have navigator.gpu and never load it.
  external: ["webgpu"],
});
