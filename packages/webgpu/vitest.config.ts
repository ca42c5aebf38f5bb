import { existsSync } from "node:fs";
import { defineConfig } from "vitest/config";

// Dawn needs a Vulkan loader and driver. On CPU-only Debian machines both come with the `chromium` package
// (SwiftShader's driver; Dawn refuses Mesa's lavapipe). The loader is found through LD_LIBRARY_PATH, which the
// dynamic linker reads when a process starts, so it is set here, before vitest forks its test workers.
const CHROMIUM = "/usr/lib/chromium";
if (existsSync(`${CHROMIUM}/vk_swiftshader_icd.json`)) {
  process.env.VK_DRIVER_FILES ??= `${CHROMIUM}/vk_swiftshader_icd.json`;
  const hasSystemLoader = ["/usr/lib/x86_64-linux-gnu/libvulkan.so.1", "/usr/lib/aarch64-linux-gnu/libvulkan.so.1"].some(existsSync);
  if (!hasSystemLoader && existsSync(`${CHROMIUM}/libvulkan.so.1`)) {
    process.env.LD_LIBRARY_PATH = [CHROMIUM, process.env.LD_LIBRARY_PATH].filter(Boolean).join(":");
  }
}

export default defineConfig({
  test: { include: ["test/**/*.test.ts"], testTimeout: 600_000, hookTimeout: 120_000, pool: "forks", fileParallelism: false, isolate: false },
});
