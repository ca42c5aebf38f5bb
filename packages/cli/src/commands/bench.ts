import { readFileSync } from "node:fs";
import {
  type ConformanceDType,
  generateCaseValues,
  getBackend,
  type HostTensor,
  hostCall,
  listBackends,
  NoBackendError,
  parseCase,
  selectBackend,
} from "@te/core";
import { type Command, oneOf, parseCommandLine, positiveInteger, UsageError } from "../command.js";
import { configByName, RUN_CONFIGS, type RunConfig } from "../configs.js";
import { loadAllPackages } from "../load-backends.js";

const DTYPES = ["fp32", "fp16", "bf16"] as const;
const FORMATS = ["markdown", "json", "csv"] as const;
const DEFAULT_CONFIGS = RUN_CONFIGS.filter((c) => c.name !== "tiny").map((c) => c.name);

const usage = `te bench [--config NAME[,NAME...]] [--backend ID[,ID...]] [--dtype fp32|fp16|bf16] [--iters N]
         [--warmup N] [--baseline ID] [--format markdown|json|csv] [--anchor FILE]
  Times forward + backward (one forward, one backward; median of --iters runs after --warmup) of each
  backend on the seed's model configs (${DEFAULT_CONFIGS.join(", ")}; also: tiny). A backend that does
  not support a config gets 0. Speedup columns: the --baseline backend's time / the backend's time.
  --anchor FILE  the JSON of python3 .gpu/torch_sdpa_anchor.py (same GPU run): adds each backend's time
                 ratio against PyTorch SDPA cuDNN and flash (>1 = faster than PyTorch).
  Host backends on the long configs take minutes; pick configs with --config.`;

/** One measured cell: median fwd+bwd milliseconds, or 0 with the reason where the backend refuses. */
interface Cell {
  readonly config: string;
  readonly backend: string;
  readonly fwdBwdMs: number;
  readonly reason?: string;
}

interface AnchorTimes {
  readonly cudnn?: number;
  readonly flash?: number;
}

/** Reads torch_sdpa_anchor.py's JSON: {results: {config: {cudnn: {fwd_bwd_ms}, flash: {...}}}}. */
export function readAnchor(file: string): Map<string, AnchorTimes> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new UsageError(`--anchor: cannot read ${file} as JSON (${(e as Error).message})`);
  }
  const results = (json as { results?: Record<string, Record<string, unknown>> }).results;
  if (!results || typeof results !== "object")
    throw new UsageError(`--anchor: ${file} has no "results" object (expected torch_sdpa_anchor.py output)`);
  const ms = (x: unknown) => {
    const v = (x as { fwd_bwd_ms?: unknown } | undefined)?.fwd_bwd_ms;
    return typeof v === "number" && v > 0 ? v : undefined;
  };
  const out = new Map<string, AnchorTimes>();
  for (const [name, r] of Object.entries(results)) out.set(name, { cudnn: ms(r.cudnn), flash: ms(r.flash) });
  return out;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

async function timeCell(
  cfg: RunConfig,
  backendId: string,
  dtype: ConformanceDType,
  iters: number,
  warmup: number,
): Promise<Cell> {
  const c = parseCase({ ...cfg, seed: 1 });
  // The call is made on the backend's own tensor kind (cuda, webgpu, ...), so its rules see that device.
  const device = getBackend(backendId)?.tensors.kind ?? "host";
  const call = hostCall(c, generateCaseValues(c, dtype), { dtype, device, isTraining: true });
  let backend: ReturnType<typeof selectBackend>["backend"];
  try {
    backend = selectBackend(call.params, { backends: [backendId] }).backend;
  } catch (e) {
    if (e instanceof NoBackendError) {
      // The verdict of the requested backend; none when it does not take host tensors at all.
      const own = e.verdicts.find((v) => v.id === backendId);
      const reason = own
        ? own.reasons.map((r) => `${r.message} [${r.rule}]`).join("; ")
        : `it takes no ${call.params.device} tensors`;
      return { config: cfg.name, backend: backendId, fwdBwdMs: 0, reason };
    }
    throw e;
  }
  const bridge = backend.tensors;
  const owned: unknown[] = [];
  const up = async (t: HostTensor) => {
    const x = await bridge.fromHost(t);
    owned.push(x);
    return x;
  };
  const i = call.inputs;
  const inputs = {
    ...i,
    q: await up(i.q),
    k: await up(i.k),
    v: await up(i.v),
    bias: i.bias && (await up(i.bias)),
    softmaxOffset: i.softmaxOffset && (await up(i.softmaxOffset)),
  };
  const dO = await up(call.dO);
  const times: number[] = [];
  try {
    for (let it = 0; it < warmup + iters; it++) {
      const t0 = performance.now();
      const fwd = await backend.forward(inputs, call.params);
      const grads = await backend.backward(fwd.saved, dO, call.params);
      // Reading one gradient back waits for asynchronous devices; its copy is part of every backend's time.
      await bridge.toHost(grads.dv);
      if (it >= warmup) times.push(performance.now() - t0);
      fwd.saved.release();
      for (const t of [fwd.o, fwd.lse, grads.dq, grads.dk, grads.dv]) bridge.dispose(t);
    }
  } finally {
    for (const t of new Set(owned)) bridge.dispose(t);
  }
  return { config: cfg.name, backend: backendId, fwdBwdMs: median(times) };
}

function progress(done: number, total: number, label: string): string {
  const width = 24;
  const filled = Math.round((done / total) * width);
  return `\r[${"#".repeat(filled)}${" ".repeat(width - filled)}] ${done}/${total} ${label}`.padEnd(72);
}

/** The report rows: config, each backend's ms and speedup vs the baseline, and anchor ratios. */
export function benchRows(
  cells: readonly Cell[],
  configs: readonly string[],
  backends: readonly string[],
  baseline: string,
  anchor?: Map<string, AnchorTimes>,
): Record<string, string | number>[] {
  const fmt = (x: number) => Number(x.toFixed(4));
  return configs.map((config) => {
    const row: Record<string, string | number> = { config };
    const ms = (b: string) => cells.find((c) => c.config === config && c.backend === b)?.fwdBwdMs ?? 0;
    const base = ms(baseline);
    for (const b of backends) row[`${b} ms`] = fmt(ms(b));
    for (const b of backends)
      if (b !== baseline) row[`${b} speedup`] = base > 0 && ms(b) > 0 ? fmt(base / ms(b)) : 0;
    const a = anchor?.get(config);
    if (anchor) {
      row["torch cudnn ms"] = a?.cudnn ?? 0;
      row["torch flash ms"] = a?.flash ?? 0;
      for (const b of backends) {
        row[`${b} vs cudnn`] = a?.cudnn && ms(b) > 0 ? fmt(a.cudnn / ms(b)) : 0;
        row[`${b} vs flash`] = a?.flash && ms(b) > 0 ? fmt(a.flash / ms(b)) : 0;
      }
    }
    return row;
  });
}

export function formatRows(
  rows: Record<string, string | number>[],
  format: (typeof FORMATS)[number],
): string[] {
  if (format === "json") return [JSON.stringify(rows, null, 2)];
  const cols = rows.length ? Object.keys(rows[0]) : ["config"];
  if (format === "csv") return [cols.join(","), ...rows.map((r) => cols.map((c) => String(r[c])).join(","))];
  return [
    `| ${cols.join(" | ")} |`,
    `|${cols.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${cols.map((c) => String(r[c])).join(" | ")} |`),
  ];
}

export const benchCommand: Command = {
  name: "bench",
  summary: "forward+backward times of each backend on the seed model configs (vs PyTorch with --anchor)",
  usage,
  async run(argv, io) {
    const { values } = parseCommandLine(
      argv,
      {
        config: { type: "string" },
        backend: { type: "string" },
        dtype: { type: "string" },
        iters: { type: "string" },
        warmup: { type: "string" },
        baseline: { type: "string" },
        format: { type: "string" },
        anchor: { type: "string" },
      },
      false,
    );
    const configs = values.config ? values.config.split(",") : DEFAULT_CONFIGS;
    for (const name of configs)
      if (!configByName(name))
        throw new UsageError(
          `--config: expected names from ${RUN_CONFIGS.map((c) => c.name).join(", ")}, got "${name}"`,
        );
    const dtype: ConformanceDType = oneOf("dtype", values.dtype, DTYPES) ?? "bf16";
    const iters = positiveInteger("iters", values.iters) ?? 10;
    const warmup = values.warmup === "0" ? 0 : (positiveInteger("warmup", values.warmup) ?? 2);
    const format = oneOf("format", values.format, FORMATS) ?? "markdown";
    const anchor = values.anchor ? readAnchor(values.anchor) : undefined;

    await loadAllPackages();
    const known = listBackends().map((b) => b.id);
    const backends = values.backend ? values.backend.split(",") : known;
    for (const b of backends)
      if (!known.includes(b))
        throw new UsageError(`--backend: "${b}" is not registered (have: ${known.join(", ")})`);
    const baseline = values.baseline ?? backends[0];
    if (!backends.includes(baseline))
      throw new UsageError(`--baseline: "${baseline}" is not among the benchmarked backends`);

    const cells: Cell[] = [];
    const total = configs.length * backends.length;
    const tty = process.stderr.isTTY;
    for (const name of configs) {
      for (const b of backends) {
        if (tty) process.stderr.write(progress(cells.length, total, `${name} ${b}`));
        else io.err(`bench ${cells.length + 1}/${total}: ${name} on ${b}`);
        cells.push(await timeCell(configByName(name)!, b, dtype, iters, warmup));
      }
    }
    if (tty) process.stderr.write(`${progress(total, total, "done")}\n`);
    for (const c of cells.filter((x) => x.reason))
      io.err(`${c.backend} does not run ${c.config}: ${c.reason}`);
    for (const line of formatRows(benchRows(cells, configs, backends, baseline, anchor), format))
      io.out(line);
    return 0;
  },
};
