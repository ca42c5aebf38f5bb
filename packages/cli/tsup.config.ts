import { defineConfig } from "tsup";

// One ESM file with a node shebang; @te/* packages stay external (backend packages are imported on demand).
export default defineConfig({
  entry: { te: "src/te.ts" },
  format: ["esm"],
  banner: { js: "#!/usr/bin/env node" },
  sourcemap: true,
  clean: true,
  target: "node20",
  platform: "node",
  external: [/^@te\//, /^@tensorflow\//],
});
