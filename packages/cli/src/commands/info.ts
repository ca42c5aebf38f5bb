import {
  type AttentionBackend,
  type AttentionParams,
  getCudaArch,
  listBackends,
  makeParams,
  processEnv,
  type Reason,
  type SelectionContext,
  teRank,
} from "@te/core";
import { type Command, parseCommandLine } from "../command.js";
import { CLI_VERSION, loadAllPackages, versionOf } from "../load-backends.js";

const usage = `te info [--reasons]
  Loads every backend package that is installed and built, then lists the registered backends: family,
  tensor kind, dtypes, rank, and a table of features (each asked of the backend's explain on probe params).
  --reasons  also print why a backend refuses each feature it does not support`;

type Probe = readonly [string, (base: AttentionParams) => Partial<AttentionParams>];

/** Features, each as a change to a plain call (b=2 h=16 d=64 s=512, training). */
const PROBES: readonly Probe[] = [
  ["fp32", () => ({ dtype: "fp32" })],
  ["fp16", () => ({ dtype: "fp16" })],
  ["bf16", () => ({ dtype: "bf16" })],
  [
    "fp8 (DelayedScaling, e4m3)",
    () => ({ dtype: "fp8e4m3", fp8: { dpa: true, mha: false, backward: true } }),
  ],
  ["bshd", () => ({ qkvFormat: "bshd", qkvLayout: "bshd_bshd_bshd" })],
  ["sbhd", () => ({ qkvFormat: "sbhd", qkvLayout: "sbhd_sbhd_sbhd" })],
  [
    "thd (padding, cu_seqlens)",
    () => ({ qkvFormat: "thd", qkvLayout: "thd_thd_thd", maskType: "padding", tq: 700, tkv: 700 }),
  ],
  ["packed qkv (bs3hd)", () => ({ qkvLayout: "bs3hd" })],
  ["causal", () => ({ maskType: "causal" })],
  ["causal_bottom_right", () => ({ maskType: "causal_bottom_right", skv: 1024 })],
  ["padding", () => ({ maskType: "padding" })],
  ["padding_causal", () => ({ maskType: "padding_causal" })],
  ["arbitrary mask", () => ({ maskType: "arbitrary" })],
  ["sliding window (causal, 128)", () => ({ maskType: "causal", window: [128, 0] })],
  ["post_scale_bias 1hss", () => ({ biasType: "post_scale_bias", biasShape: "1hss" })],
  ["pre_scale_bias 1hss", () => ({ biasType: "pre_scale_bias", biasShape: "1hss" })],
  ["bias gradient", () => ({ biasType: "post_scale_bias", biasShape: "1hss", biasRequiresGrad: true })],
  ["alibi", () => ({ biasType: "alibi", alibiSlopes: "default" })],
  ["GQA (h 16, hg 4)", () => ({ hg: 4 })],
  ["MQA (hg 1)", () => ({ hg: 1 })],
  ["head dim 256", () => ({ d: 256, dv: 256, softmaxScale: 1 / 16 })],
  ["dv != d (MLA, 192/128)", () => ({ d: 192, dv: 128 })],
  ["softmax off_by_one", () => ({ softmaxType: "off_by_one" })],
  ["softmax learnable", () => ({ softmaxType: "learnable" })],
  ["dropout 0.1", () => ({ dropout: 0.1 })],
  ["deterministic backward", () => ({ deterministic: true })],
  ["inference only", () => ({ isTraining: false })],
];

function verdict(
  backend: AttentionBackend<unknown>,
  p: AttentionParams,
  context: SelectionContext,
): readonly Reason[] {
  if (!backend.dtypes.includes(p.dtype)) {
    return [
      { rule: "dtype", message: `does not support dtype ${p.dtype} (supports ${backend.dtypes.join(", ")})` },
    ];
  }
  try {
    const e = backend.explain(p, context);
    return e.ok ? [] : e.reasons;
  } catch (err) {
    return [{ rule: "explain.threw", message: `explain threw: ${(err as Error).message}` }];
  }
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((r) => r[col].length)));
  return rows.map((r) =>
    r
      .map((cell, col) => cell.padEnd(widths[col]))
      .join("  ")
      .trimEnd(),
  );
}

export const infoCommand: Command = {
  name: "info",
  summary: "registered backends, their devices, dtypes and features",
  usage,
  async run(argv, io) {
    const { values } = parseCommandLine(argv, { reasons: { type: "boolean" } }, false);
    const statuses = await loadAllPackages();
    const cudaArch = getCudaArch();
    const context: SelectionContext = { cudaArch, env: processEnv() };
    io.out(
      `@te/cli ${CLI_VERSION}, @te/core ${versionOf("@te/core") ?? "?"}, node ${process.versions.node} (${process.platform}-${process.arch})`,
    );
    io.out(`CUDA device: ${cudaArch === null ? "none found" : `sm_${cudaArch}`}`);
    io.out("packages:");
    for (const s of statuses) {
      io.out(`  ${s.name.padEnd(16)} ${s.loaded ? `loaded ${s.version ?? ""}` : `not loaded: ${s.problem}`}`);
    }
    const backends = listBackends().sort(
      (a, b) => a.rank(context) - b.rank(context) || a.id.localeCompare(b.id),
    );
    io.out("");
    io.out("backends (in selection order for their tensor kind):");
    const header = ["id", "family", "tensors", "dtypes", "rank"];
    const rows = backends.map((b) => [
      b.id,
      b.family,
      b.tensors.kind,
      b.dtypes.join(","),
      String(b.rank(context)),
    ]);
    for (const line of table([header, ...rows])) io.out(`  ${line}`);
    io.out(
      `  (TE's family order here: flash ${teRank("FlashAttention", cudaArch)}, fused ${teRank("FusedAttention", cudaArch)}, unfused ${teRank("UnfusedDotProductAttention", cudaArch)})`,
    );

    io.out("");
    io.out("features (yes = explain accepts a b=2 h=16 d=64 s=512 training call with the feature):");
    const refusals: string[] = [];
    const featureRows = PROBES.map(([name, change]) => {
      const cells = backends.map((b) => {
        const base = makeParams({
          b: 2,
          h: 16,
          d: 64,
          sq: 512,
          device: b.tensors.kind,
          dtype: b.dtypes[0] ?? "fp32",
          isTraining: true,
        });
        const reasons = verdict(b, { ...base, ...change(base) }, context);
        for (const r of reasons) refusals.push(`  ${b.id} / ${name}: ${r.message} [${r.rule}]`);
        return reasons.length === 0 ? "yes" : "no";
      });
      return [name, ...cells];
    });
    for (const line of table([["feature", ...backends.map((b) => b.id)], ...featureRows]))
      io.out(`  ${line}`);
    if (values.reasons && refusals.length > 0) {
      io.out("");
      io.out("reasons:");
      for (const line of refusals) io.out(line);
    }
    return 0;
  },
};
