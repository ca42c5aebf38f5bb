import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { benchRows, formatRows, readAnchor } from "../src/commands/bench.js";

describe("te bench report", () => {
  const cells = [
    { config: "test_1", backend: "a", fwdBwdMs: 2 },
    { config: "test_1", backend: "b", fwdBwdMs: 0.5 },
    { config: "test_0", backend: "a", fwdBwdMs: 1 },
    { config: "test_0", backend: "b", fwdBwdMs: 0, reason: "unsupported" },
  ];

  it("gives speedups against the baseline and 0 where a backend does not run a config", () => {
    const rows = benchRows(cells, ["test_0", "test_1"], ["a", "b"], "a");
    expect(rows[1]).toMatchObject({ config: "test_1", "a ms": 2, "b ms": 0.5, "b speedup": 4 });
    expect(rows[0]).toMatchObject({ "b ms": 0, "b speedup": 0 });
  });

  it("reads the PyTorch anchor and prints ratios against cuDNN and flash", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "te-bench-"));
    const file = path.join(dir, "anchor.json");
    writeFileSync(
      file,
      JSON.stringify({ results: { test_1: { cudnn: { fwd_bwd_ms: 1 }, flash: "unsupported: no kernel" } } }),
    );
    const anchor = readAnchor(file);
    const rows = benchRows(cells, ["test_1"], ["a", "b"], "a", anchor);
    expect(rows[0]).toMatchObject({
      "torch cudnn ms": 1,
      "torch flash ms": 0,
      "b vs cudnn": 2,
      "a vs flash": 0,
    });
    const csv = formatRows(rows, "csv");
    expect(csv[0].split(",")[0]).toBe("config");
    expect(formatRows(rows, "markdown")[1]).toMatch(/^\|---/);
  });
});
