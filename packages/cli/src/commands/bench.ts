import type { Command } from "../command.js";

/**
 * Placeholder until the benchmarks (H4's work: benchmarks/, scripts/gpu/) replace it. It says so
 * instead of printing numbers it did not measure.
 */
export const benchCommand: Command = {
  name: "bench",
  summary: "benchmarks (not available in this build)",
  usage:
    "te bench\n  Not implemented in this build: the CUDA benchmarks live in benchmarks/ and scripts/gpu/.",
  async run(_argv, io) {
    io.err(
      "te bench: not implemented in this build; the benchmarks live in benchmarks/ and scripts/gpu/ (GPU machine).",
    );
    io.err("Use `te run --config NAME` to time one forward and backward pass on this machine.");
    return 2;
  },
};
