import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ArgumentError, hostTensor, makeParams } from "@te/core";
import { describe, expect, test } from "vitest";
import { addonCandidates, loadBinding, nativeCpuBackend } from "../src/index.js";

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures");

function addonPath(): string {
  loadBinding();
  const found = addonCandidates().find((f) => existsSync(f));
  if (!found) throw new Error("te_native.node not found");
  return found;
}

function runChild(
  script: string,
  ...args: string[]
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--expose-gc", path.join(fixtures, script), addonPath(), ...args], {
    encoding: "utf8",
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("bad input through the addon", () => {
  test("every malformed raw call is a JS error, never a crash (child process)", () => {
    const r = runChild("hammer.cjs");
    expect(r.status, r.stderr).toBe(0);
    const outcomes = JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, string>;
    expect(Object.keys(outcomes).length).toBeGreaterThanOrEqual(25);
    for (const [name, outcome] of Object.entries(outcomes)) expect(outcome, name).not.toBe("no error");
    expect(outcomes["too short q"]).toBe("TE_ERR_INVALID_ARGUMENT");
    expect(outcomes["unknown backend"]).toBe("TE_ERR_UNKNOWN_BACKEND");
  });

  test("the backend names the argument: wrong dtype, wrong shape, released saved state", async () => {
    const backend = nativeCpuBackend();
    const p = makeParams({ b: 1, h: 2, d: 8, sq: 4, isTraining: true });
    const q = hostTensor("fp32", [1, 4, 2, 8]);
    const half = hostTensor("fp16", [1, 4, 2, 8]);
    await expect(backend.forward({ q, k: half, v: q }, p)).rejects.toSatisfy(
      (e) => ArgumentError.isInstance(e) && e.argument === "k.dtype",
    );
    await expect(backend.forward({ q, k: hostTensor("fp32", [1, 4, 2, 7]), v: q }, p)).rejects.toSatisfy(
      (e) => ArgumentError.isInstance(e) && e.argument === "k.shape",
    );
    const short = { ...q, data: new Float32Array(10) };
    await expect(backend.forward({ q: short, k: q, v: q }, p)).rejects.toSatisfy((e) =>
      ArgumentError.isInstance(e),
    );
    const fwd = await backend.forward({ q, k: q, v: q }, p);
    fwd.saved.release();
    await expect(backend.backward(fwd.saved, q, p)).rejects.toSatisfy(
      (e) => ArgumentError.isInstance(e) && e.argument === "saved",
    );
  });
});

describe("memory", () => {
  test("10,000 allocate/run/drop cycles do not grow external memory or RSS (child process)", () => {
    const r = runChild("cycles.cjs", "10000");
    expect(r.status, r.stderr).toBe(0);
    const { before, after } = JSON.parse(r.stdout.trim()) as Record<
      "before" | "after",
      { rss: number; external: number }
    >;
    // A leaked reference per cycle would keep ~1.5 KB of typed arrays alive: 15 MB of external memory.
    expect(after.external - before.external).toBeLessThan(2 * 2 ** 20);
    expect(after.rss - before.rss).toBeLessThan(64 * 2 ** 20);
  });
});
