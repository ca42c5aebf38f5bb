import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  benchRows,
  formatRows,
  forwardFlops,
  forwardRows,
  fp8Rows,
  readAnchor,
  SLOWEST,
} from "../src/commands/bench.js";
import { configByName } from "../src/configs.js";

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

  it("reports device-event times as the table's ms and keeps the wall clock beside them", () => {
    const timed = [
      { config: "test_1", backend: "cuda", fwdBwdMs: 0.4, wallMs: 0.5 },
      { config: "test_1", backend: "host", fwdBwdMs: 2 },
    ];
    const rows = benchRows(timed, ["test_1"], ["cuda", "host"], "host");
    expect(rows[0]).toMatchObject({ "cuda ms": 0.4, "cuda wall ms": 0.5, "host ms": 2, "cuda speedup": 5 });
    expect(rows[0]).not.toHaveProperty("host wall ms");
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

  it("--forward rows: forward ms and TFLOPS, PyTorch's forward ms from the anchor and the ratios", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "te-bench-"));
    const file = path.join(dir, "anchor.json");
    const torch = {
      test_1: { cudnn: { fwd_bwd_ms: 1, fwd_ms: 0.25 }, flash: { fwd_bwd_ms: 2, fwd_ms: 0.5 } },
    };
    writeFileSync(file, JSON.stringify({ results: torch }));
    const cfg = configByName("test_1")!;
    const fwd = [
      { config: "test_1", backend: "ours", fwdBwdMs: 0.4 },
      { config: "test_1", backend: "slow", fwdBwdMs: 0, reason: "unsupported" },
    ];
    const [row] = forwardRows(fwd, [cfg], ["ours", "slow"], readAnchor(file));
    expect(row).toMatchObject({
      "ours fwd ms": 0.4,
      "torch cudnn fwd ms": 0.25,
      "torch flash fwd ms": 0.5,
      "ours fwd vs flash": 1.25,
      "ours fwd vs cudnn": 0.625,
      "slow fwd ms": 0,
      "slow fwd TFLOPS": 0,
      "slow fwd vs flash": 0,
    });
    expect(row["ours fwd TFLOPS"]).toBeCloseTo(forwardFlops(cfg) / (0.4 * 1e9), 3);
    expect(row["torch flash fwd TFLOPS"]).toBeCloseTo(forwardFlops(cfg) / (0.5 * 1e9), 3);
    expect(forwardRows(fwd, [cfg], ["ours"])[0]).not.toHaveProperty("torch flash fwd ms");
  });

  it("--baseline slowest: every backend's speedup against the slowest one that runs the config", () => {
    const three = [
      { config: "test_1", backend: "cudnn", fwdBwdMs: 1 },
      { config: "test_1", backend: "flash", fwdBwdMs: 2 },
      { config: "test_1", backend: "unfused", fwdBwdMs: 8 },
      { config: "test_0", backend: "cudnn", fwdBwdMs: 0, reason: "unsupported" },
      { config: "test_0", backend: "flash", fwdBwdMs: 3 },
      { config: "test_0", backend: "unfused", fwdBwdMs: 6 },
    ];
    const rows = benchRows(three, ["test_0", "test_1"], ["cudnn", "flash", "unfused"], SLOWEST);
    expect(rows[1]).toMatchObject({ "cudnn speedup": 8, "flash speedup": 4, "unfused speedup": 1 });
    expect(rows[0]).toMatchObject({ "cudnn ms": 0, "cudnn speedup": 0, "flash speedup": 2 });
    // With the unfused backend as baseline (te bench's default when one is benchmarked), the same numbers.
    const vsUnfused = benchRows(three, ["test_1"], ["cudnn", "flash", "unfused"], "unfused");
    expect(vsUnfused[0]).toMatchObject({ "cudnn speedup": 8, "flash speedup": 4 });
    expect(vsUnfused[0]).not.toHaveProperty("unfused speedup");
  });

  it("--fp8 rows: forward ms in F16 and FP8, FP8 TFLOPS and speedup; 0 where FP8 is refused", () => {
    const cfg = configByName("test_1")!;
    expect(forwardFlops(cfg)).toBe((2 * 2 * 16 * 2048 * 2048 * 256) / 2);
    const rows = fp8Rows(
      [
        { config: "test_1", backend: "cudnn", fwdBwdMs: 2 },
        { config: "test_1", backend: "flash", fwdBwdMs: 3 },
      ],
      [
        { config: "test_1", backend: "cudnn", fwdBwdMs: 1 },
        { config: "test_1", backend: "flash", fwdBwdMs: 0, reason: "does not support FP8 attention" },
      ],
      [cfg],
      ["cudnn", "flash"],
      "bf16",
    );
    expect(rows[0]).toMatchObject({
      "cudnn fwd bf16 ms": 2,
      "cudnn fwd fp8 ms": 1,
      "cudnn fp8 speedup": 2,
      "flash fwd fp8 ms": 0,
      "flash fwd fp8 TFLOPS": 0,
      "flash fp8 speedup": 0,
    });
    expect(rows[0]["cudnn fwd fp8 TFLOPS"]).toBeCloseTo(forwardFlops(cfg) / 1e9, 3);
  });
});
