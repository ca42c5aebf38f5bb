import { type ConformanceDType, formatCaseResult, QKV_LAYOUT_GROUPS, runConformance } from "@te/core";
import { type Command, oneOf, parseCommandLine, positiveInteger, UsageError } from "../command.js";
import { backendById } from "../load-backends.js";

const usage = `te conformance DIR --backend ID [--dtype fp32|fp16|bf16] [--filter SUBSTRING] [--no-gradients]
                   [--layout ${QKV_LAYOUT_GROUPS.join("|")}] [--thd-gap N]
  Runs every case under DIR (folders with case.json and expected .npy files) against the backend.
  Prints PASS|FAIL|SKIP per case, then "N passed, M failed, K skipped". Exit code 1 on any failure.
  --layout  feed q/k/v as strided views of packed buffers (3hd: one qkv buffer, hd_2hd: q + one kv buffer,
            ...); cases that cannot be packed so are skipped
  --thd-gap feed thd cases with N NaN-filled padding rows after each sequence (cu_seqlens_padded)`;

export const conformanceCommand: Command = {
  name: "conformance",
  summary: "run a directory of conformance cases against a backend",
  usage,
  async run(argv, io) {
    const { values, positionals } = parseCommandLine(
      argv,
      {
        backend: { type: "string" },
        dtype: { type: "string" },
        filter: { type: "string" },
        "no-gradients": { type: "boolean" },
        layout: { type: "string" },
        "thd-gap": { type: "string" },
      },
      true,
    );
    if (positionals.length !== 1)
      throw new UsageError(`expected one directory of cases, got ${positionals.length} arguments`);
    if (values.backend === undefined)
      throw new UsageError("--backend ID is required (see te info for the ids)");
    const dtype: ConformanceDType = oneOf("dtype", values.dtype, ["fp32", "fp16", "bf16"] as const) ?? "fp32";
    const layoutGroup = oneOf("layout", values.layout, QKV_LAYOUT_GROUPS);
    const backend = await backendById(values.backend);
    const summary = await runConformance({
      dir: positionals[0],
      backend,
      dtype,
      filter: values.filter,
      gradients: !values["no-gradients"],
      layoutGroup,
      onResult: (r) => io.out(formatCaseResult(r)),
    });
    io.out(`${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped`);
    return summary.failed > 0 ? 1 : 0;
  },
};
