import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdtemp, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = path.resolve(here, "../dist/te.js");
const casesDir = process.env.TE_CONFORMANCE_DIR ?? path.resolve(here, "../../../conformance/cases");

/** Runs the built `te` in a child process. */
function te(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 110_000 });
  return { code: r.status, out: r.stdout, err: r.stderr, lines: r.stdout.trimEnd().split("\n") };
}

beforeAll(() => {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build the CLI first (pnpm build)`);
});

describe("te conformance", () => {
  it("prints a line per case and the summary line, exit 0 when all pass", () => {
    const r = te("conformance", casesDir, "--backend", "reference", "--filter", "mask_causal_b");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.lines.slice(0, -1).map((l) => l.split(" ")[0])).toEqual(["PASS", "PASS", "PASS"]);
    expect(r.lines[0]).toMatch(/^PASS mask_causal_bottom_right_kv_longer {2}o /);
    expect(r.lines.at(-1)).toBe("3 passed, 0 failed, 0 skipped");
  });

  it("loads the kernel package that an adapter backend runs (ort.te runs native.cpu)", () => {
    const r = te(
      "conformance",
      casesDir,
      "--backend",
      "ort.te",
      "--filter",
      "mask_causal_b",
      "--no-gradients",
    );
    expect(r.code).toBe(0);
    expect(r.lines.at(-1)).toBe("3 passed, 0 failed, 0 skipped");
  });

  it("--layout feeds packed views and skips the cases that cannot be packed", () => {
    const r = te(
      "conformance",
      casesDir,
      "--backend",
      "reference",
      "--filter",
      "mask_causal_b",
      "--layout",
      "3hd",
    );
    expect(r.code).toBe(0);
    expect(r.lines.slice(0, -1).map((l) => l.split(" ").slice(0, 2).join(" "))).toEqual([
      "SKIP mask_causal_bottom_right_kv_longer",
      "PASS mask_causal_bottom_right_self",
      "SKIP mask_causal_br_decode",
    ]);
    expect(r.lines.at(-1)).toBe("1 passed, 0 failed, 2 skipped");
  });

  it("exits 1 when a case fails", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "te-cli-"));
    await cp(path.join(casesDir, "base_d32"), path.join(dir, "base_d32"), { recursive: true });
    const file = path.join(dir, "base_d32", "o.npy");
    const bytes = await readFile(file);
    // Move the last float32 of o (little-endian) by flipping its exponent's low bit.
    bytes[bytes.length - 2] ^= 0x80;
    await writeFile(file, bytes);
    const r = te("conformance", dir, "--backend", "reference", "--no-gradients");
    expect(r.code).toBe(1);
    expect(r.lines[0]).toMatch(/^FAIL base_d32 .*o \S+\(1 bad\)/);
    expect(r.lines.at(-1)).toBe("0 passed, 1 failed, 0 skipped");
  });

  it("rejects bad arguments with exit code 2 and the usage", () => {
    const noBackend = te("conformance", casesDir);
    expect(noBackend.code).toBe(2);
    expect(noBackend.err).toMatch(/--backend ID is required/);
    expect(noBackend.err).toMatch(/usage|te conformance DIR/);
    expect(te("conformance", casesDir, "--backend", "reference", "--dtype", "fp64").code).toBe(2);
    expect(te("conformance", casesDir, "--backend", "reference", "--bogus").code).toBe(2);
    expect(te("conformance", casesDir, "--backend", "reference", "--layout", "4hd").err).toMatch(
      /--layout: expected one of 3hd/,
    );
    expect(te("conformance", path.join(os.tmpdir(), "no-such-te-dir"), "--backend", "reference").code).toBe(
      2,
    );
  });

  it("says why a backend id is unknown or unavailable (exit 1)", () => {
    const unknown = te("conformance", casesDir, "--backend", "nope");
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/unknown backend "nope"/);
  });
});

describe("te run", () => {
  it("runs a small config through the selected backend, prints the selection and passes the check", () => {
    const r = te("run", "--config", "tiny");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\[DEBUG \| DotProductAttention\]: Available backends = \{.*reference=True/);
    expect(r.out).toMatch(/\[INFO \| DotProductAttention\]: Running with /);
    for (const t of ["o", "lse", "dq", "dk", "dv"])
      expect(r.out).toMatch(new RegExp(`^  ${t} +max abs error \\S+ +ok$`, "m"));
    expect(r.lines.at(-1)).toMatch(/^PASS tiny on \S+$/);
  });

  it("takes overrides and a dtype", () => {
    const r = te(
      "run",
      "--config",
      "tiny",
      "--dtype",
      "bf16",
      "--h",
      "4",
      "--hg",
      "2",
      "--sq",
      "24",
      "--bias",
      "post_scale_bias",
    );
    expect(r.code).toBe(0);
    expect(r.lines[0]).toBe(
      "te run: tiny (b=1 h=4 hg=2 d=16 sq=24 skv=24 causal post_scale_bias), bf16, bshd, fwd+bwd on host tensors",
    );
    expect(r.lines.at(-1)).toMatch(/^PASS tiny/);
  });

  it("rejects bad arguments with exit code 2", () => {
    expect(te("run", "--config", "test_99").code).toBe(2);
    expect(te("run", "--sq", "0").err).toMatch(/--sq: expected a positive integer/);
    expect(te("run", "--h", "4", "--hg", "3").code).toBe(2);
    expect(te("run", "--backend", "nope").code).toBe(1);
  });
});

describe("te", () => {
  it("info lists the reference and its features", () => {
    const r = te("info");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ {2}reference +UnfusedDotProductAttention +host +fp32,fp16,bf16 +100$/m);
    const cells = (line: string) => line.trim().split(/ {2,}/);
    const header = cells(r.lines.find((l) => l.startsWith("  feature"))!);
    const column = header.indexOf("reference");
    expect(column).toBeGreaterThan(0);
    const row = (name: string) => cells(r.lines.find((l) => l.startsWith(`  ${name}  `))!)[column];
    expect(row("causal")).toBe("yes");
    expect(row("softmax learnable")).toBe("yes");
    expect(row("fp8 (DelayedScaling, e4m3)")).toBe("no");
  });

  it("an unknown command exits 2 with the list of commands; --help lists them", () => {
    const r = te("frobnicate");
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown command "frobnicate"/);
    expect(r.err).toMatch(/conformance/);
    expect(te("--help").code).toBe(0);
  });
});
