/**
 * Loads the built page in Debian's headless Chromium (playwright-core, no bundled browser) and checks what it
 * ran: webgpu.flash when WebGPU comes up on SwiftShader, otherwise the CPU reference with the reason printed.
 * Either way the output must match the float64 reference; a screenshot is kept in test-output/.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { expect, it } from "vitest";
import { serve } from "./serve.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CHROMIUM = process.env.TE_CHROMIUM ?? "/usr/bin/chromium";

/** Headless, offline, quiet; then what brings WebGPU up on SwiftShader's Vulkan driver without a GPU. */
export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--use-vulkan=swiftshader",
  "--use-angle=swiftshader",
  "--use-webgpu-adapter=swiftshader",
  "--disable-vulkan-surface",
  "--ignore-gpu-blocklist",
];

it("runs attention in headless Chromium and matches the reference", async (ctx) => {
  if (!existsSync(CHROMIUM)) {
    console.warn(`[webgpu-browser] skipping: no Chromium at ${CHROMIUM} (apt-get install chromium)`);
    ctx.skip();
    return;
  }
  if (!existsSync(join(root, "dist/main.js"))) throw new Error("dist/main.js is missing: run `pnpm build` first");
  const { url, server } = await serve(join(root, "dist"));
  const userDataDir = mkdtempSync(join(tmpdir(), "te-chromium-"));
  const browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
  });
  try {
    const page = await browser.newPage();
    const logs: string[] = [];
    page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
    await page.goto(url);
    await page.waitForFunction(() => (window as unknown as { teResult?: { done: boolean } }).teResult?.done === true, null, {
      timeout: 150_000,
    });
    const result = (await page.evaluate(() => (window as unknown as { teResult: unknown }).teResult)) as Record<string, unknown>;
    mkdirSync(join(root, "test-output"), { recursive: true });
    await page.screenshot({ path: join(root, "test-output/page.png"), fullPage: true });
    if (logs.length > 0) console.log(logs.join("\n"));
    expect(result.error, String(result.error)).toBeUndefined();
    console.log(
      result.webgpu
        ? `[webgpu-browser] ran ${result.backend} on WebGPU in ${(result.ms as number).toFixed(2)} ms, max error ${result.maxError}`
        : `[webgpu-browser] WebGPU did not come up (${result.reason}); ran ${result.backend} on the CPU. Flags: ${CHROMIUM_FLAGS.join(" ")}`,
    );
    expect(result.backend).toBe(result.webgpu ? "webgpu.flash" : "reference");
    expect(result.maxError as number).toBeLessThan(1e-4);
  } finally {
    await browser.close();
    server.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
});
