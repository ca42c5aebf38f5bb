// Bundles the page: dist/index.html + dist/main.js (esbuild, browser ESM).
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
mkdirSync(resolve(root, "dist"), { recursive: true });
await build({
  entryPoints: [resolve(root, "src/main.ts")],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  outfile: resolve(root, "dist/main.js"),
  sourcemap: true,
  logLevel: "warning",
  // @te/core reads conformance cases from disk through dynamic imports of Node built-ins, which the page
  // never calls; leaving them external keeps them out of the bundle.
  external: ["fs", "fs/promises", "path", "url", "node:*"],
});
copyFileSync(resolve(root, "src/index.html"), resolve(root, "dist/index.html"));
console.log("built examples/webgpu-browser/dist");
