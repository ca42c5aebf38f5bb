import { readFileSync } from "node:fs";
import {
  type AttentionParams,
  type ConformanceDType,
  createFp8Meta,
  delayedScaling,
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
         [--warmup N] [--baseline ID|slowest] [--format markdown|json|csv] [--anchor FILE] [--forward]
         [--fp8] [--fp8-only]
  Times forward + backward (one forward, one backward; median of --iters runs after --warmup) of each
  backend on the seed's model configs (${DEFAULT_CONFIGS.join(", ")}; also: tiny). A backend that does
  not support a config gets 0. Speedup columns: the baseline's time / the backend's time; the baseline
  is --baseline, else the first unfused-family backend benchmarked (cuda.unfused, ...), else the
  slowest backend of each config (--baseline slowest).
  --forward      also times the forward alone and prints each backend's forward ms and TFLOPS (with
                 --anchor: PyTorch's forward ms and the ratios against them).
  --fp8          also times the forward alone in --dtype and with FP8 inside (TE's fp8_dpa, DelayedScaling,
                 fresh scales) and prints each backend's FP8 forward TFLOPS and speedup over --dtype.
  --fp8-only     the --fp8 rows alone (no forward + backward table).
  --anchor FILE  the JSON of python3 .gpu/torch_sdpa_anchor.py (same GPU run): adds each backend's time
                 ratio against PyTorch SDPA cuDNN and flash (>1 = faster than PyTorch).
  Each timed iteration ends when the device is idle (the tensor bridge's synchronize, e.g. CUDA; else
  one output read back) and includes allocating the outputs. Where the tensors' device has timing
  events (CUDA), the table's ms are device times as PyTorch's anchor measures them: an event recorded
  before the forward is queued and one after the backward, synchronize, elapsed time (host gaps in the
  queue count, the wake-up after synchronize does not); the wall-clock median (performance.now()
  around the iteration, up to the end of synchronize) is kept as "<backend> wall ms". Elsewhere both
  are the wall clock.
  Host backends on the long configs take minutes; pick configs with --config.`;

/**
 * One measured cell: median fwd+bwd milliseconds, or 0 with the reason where the backend refuses.
 * fwdBwdMs is the device-event median where the backend's tensors have a device timer, with the
 * wall-clock median beside it as wallMs; else the wall clock alone.
 */
interface Cell {
  readonly config: string;
  readonly backend: string;
  readonly fwdBwdMs: number;
  readonly wallMs?: number;
  readonly reason?: string;
}

/** PyTorch's medians per SDPA backend: forward + backward, and the forward alone (`...Fwd`). */
interface AnchorTimes {
  readonly cudnn?: number;
  readonly flash?: number;
  readonly cudnnFwd?: number;
  readonly flashFwd?: number;
}

/** Reads torch_sdpa_anchor.py's JSON: {results: {config: {cudnn: {fwd_bwd_ms, fwd_ms}, flash: {...}}}}. */
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
  const ms = (x: unknown, key: "fwd_bwd_ms" | "fwd_ms") => {
    const v = (x as Record<string, unknown> | undefined)?.[key];
    return typeof v === "number" && v > 0 ? v : undefined;
  };
  const out = new Map<string, AnchorTimes>();
  for (const [name, r] of Object.entries(results))
    out.set(name, {
      cudnn: ms(r.cudnn, "fwd_bwd_ms"),
      flash: ms(r.flash, "fwd_bwd_ms"),
      cudnnFwd: ms(r.cudnn, "fwd_ms"),
      flashFwd: ms(r.flash, "fwd_ms"),
    });
  return out;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

/** What a cell times: forward + backward, the forward alone, or the forward with FP8 inside (fp8_dpa). */
export type BenchPass = "fwd_bwd" | "fwd" | "fwd_fp8";

/**
 * The host call of a config: generating the seed configs' values takes seconds, and the --fp8 passes
 * (the forward in --dtype and in FP8) time the same call, so the last one is kept.
 */
let lastHostCall: { key: string; call: ReturnType<typeof hostCall> } | null = null;
function cachedHostCall(cfg: RunConfig, dtype: ConformanceDType, device: string, isTraining: boolean) {
  const key = JSON.stringify([cfg, dtype, device, isTraining]);
  if (lastHostCall?.key !== key) {
    const c = parseCase({ ...cfg, seed: 1 });
    lastHostCall = { key, call: hostCall(c, generateCaseValues(c, dtype), { dtype, device, isTraining }) };
  }
  return lastHostCall.call;
}

async function timeCell(
  cfg: RunConfig,
  backendId: string,
  dtype: ConformanceDType,
  iters: number,
  warmup: number,
  pass: BenchPass = "fwd_bwd",
): Promise<Cell> {
  // The call is made on the backend's own tensor kind (cuda, webgpu, ...), so its rules see that device.
  const device = getBackend(backendId)?.tensors.kind ?? "host";
  const call = cachedHostCall(cfg, dtype, device, pass === "fwd_bwd");
  const params: AttentionParams =
    pass === "fwd_fp8" ? { ...call.params, fp8: { dpa: true, mha: false, backward: false } } : call.params;
  const recipe = pass === "fwd_fp8" ? delayedScaling({ fp8Dpa: true }) : null;
  let backend: ReturnType<typeof selectBackend>["backend"];
  try {
    backend = selectBackend(params, { backends: [backendId] }).backend;
  } catch (e) {
    if (e instanceof NoBackendError) {
      // The verdict of the requested backend; none when it does not take host tensors at all.
      const own = e.verdicts.find((v) => v.id === backendId);
      const reason = own
        ? own.reasons.map((r) => `${r.message} [${r.rule}]`).join("; ")
        : `it takes no ${params.device} tensors`;
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
    ...(recipe && { fp8Meta: createFp8Meta(recipe) }),
  };
  const dO = await up(call.dO);
  // Waits for the iteration's queued device work: the bridge's synchronize where it has one (output
  // allocation stays timed, as a caller pays it), else reading `last` back (a host copy then counts).
  const finished = async (last: unknown) => {
    if (bridge.synchronize) await bridge.synchronize();
    else await bridge.toHost(last as never);
  };
  // Device events around the queued work, as torch_sdpa_anchor.py times PyTorch (where the bridge has them).
  const timer = bridge.deviceTimer?.();
  const times: number[] = [];
  const deviceTimes: number[] = [];
  try {
    for (let it = 0; it < warmup + iters; it++) {
      const t0 = performance.now();
      timer?.start();
      const fwd = await backend.forward(inputs, params);
      const grads = pass === "fwd_bwd" ? await backend.backward(fwd.saved, dO, params) : undefined;
      timer?.stop();
      await finished(grads ? grads.dv : fwd.o);
      if (it >= warmup) {
        times.push(performance.now() - t0);
        if (timer) deviceTimes.push(timer.elapsedMs());
      }
      if (grads)
        for (const t of [grads.dq, grads.dk, grads.dv, grads.dbias, grads.dSoftmaxOffset])
          if (t !== undefined) bridge.dispose(t);
      fwd.saved.release();
      for (const t of [fwd.o, fwd.lse]) bridge.dispose(t);
    }
  } finally {
    timer?.dispose();
    for (const t of new Set(owned)) bridge.dispose(t);
  }
  if (!timer) return { config: cfg.name, backend: backendId, fwdBwdMs: median(times) };
  return { config: cfg.name, backend: backendId, fwdBwdMs: median(deviceTimes), wallMs: median(times) };
}

function progress(done: number, total: number, label: string): string {
  const width = 24;
  const filled = Math.round((done / total) * width);
  return `\r[${"#".repeat(filled)}${" ".repeat(width - filled)}] ${done}/${total} ${label}`.padEnd(72);
}

/** The baseline `--baseline slowest` names: per config, the slowest backend that runs it. */
export const SLOWEST = "slowest";

/**
 * The report rows: config, each backend's ms and speedup vs the baseline (a backend id, or SLOWEST),
 * and anchor ratios. 0 where a backend does not run the config.
 */
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
    const base = baseline === SLOWEST ? Math.max(0, ...backends.map(ms)) : ms(baseline);
    for (const b of backends) row[`${b} ms`] = fmt(ms(b));
    for (const b of backends.filter((x) => cells.some((c) => c.backend === x && c.wallMs !== undefined)))
      row[`${b} wall ms`] = fmt(cells.find((c) => c.config === config && c.backend === b)?.wallMs ?? 0);
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

/** Forward FLOPs of a config (q.k and p.v, 2 flops per multiply-add; causal masks skip about half). */
export function forwardFlops(cfg: RunConfig): number {
  const full = 2 * cfg.b * cfg.h * cfg.sq * cfg.skv * (cfg.d + cfg.d);
  return cfg.mask.includes("causal") ? full / 2 : full;
}

/**
 * The --forward rows: each backend's forward ms and TFLOPS, and with an anchor PyTorch's forward ms and
 * the ratios against them (> 1 = faster); 0 where a backend or PyTorch does not run the config.
 */
export function forwardRows(
  fwd: readonly Cell[],
  configs: readonly RunConfig[],
  backends: readonly string[],
  anchor?: Map<string, AnchorTimes>,
): Record<string, string | number>[] {
  const fmt = (x: number) => Number(x.toFixed(4));
  const tflops = (cfg: RunConfig, ms: number) => (ms > 0 ? fmt(forwardFlops(cfg) / (ms * 1e9)) : 0);
  return configs.map((cfg) => {
    const row: Record<string, string | number> = { config: cfg.name };
    const ms = (b: string) => fwd.find((c) => c.config === cfg.name && c.backend === b)?.fwdBwdMs ?? 0;
    for (const b of backends) {
      row[`${b} fwd ms`] = fmt(ms(b));
      row[`${b} fwd TFLOPS`] = tflops(cfg, ms(b));
    }
    if (anchor) {
      const a = anchor.get(cfg.name);
      row["torch cudnn fwd ms"] = a?.cudnnFwd ?? 0;
      row["torch flash fwd ms"] = a?.flashFwd ?? 0;
      row["torch flash fwd TFLOPS"] = tflops(cfg, a?.flashFwd ?? 0);
      for (const b of backends) {
        row[`${b} fwd vs cudnn`] = a?.cudnnFwd && ms(b) > 0 ? fmt(a.cudnnFwd / ms(b)) : 0;
        row[`${b} fwd vs flash`] = a?.flashFwd && ms(b) > 0 ? fmt(a.flashFwd / ms(b)) : 0;
      }
    }
    return row;
  });
}

/**
 * The --fp8 rows: each backend's forward ms in the run's dtype and with FP8 inside, the FP8 forward's
 * TFLOPS and its speedup over the F16 forward; 0 where the backend does not run the call.
 */
export function fp8Rows(
  fwd: readonly Cell[],
  fwdFp8: readonly Cell[],
  configs: readonly RunConfig[],
  backends: readonly string[],
  dtype: string,
): Record<string, string | number>[] {
  const fmt = (x: number) => Number(x.toFixed(4));
  const ms = (cells: readonly Cell[], config: string, b: string) =>
    cells.find((c) => c.config === config && c.backend === b)?.fwdBwdMs ?? 0;
  return configs.map((cfg) => {
    const row: Record<string, string | number> = { config: cfg.name };
    for (const b of backends) {
      const f16 = ms(fwd, cfg.name, b);
      const f8 = ms(fwdFp8, cfg.name, b);
      row[`${b} fwd ${dtype} ms`] = fmt(f16);
      row[`${b} fwd fp8 ms`] = fmt(f8);
      row[`${b} fwd fp8 TFLOPS`] = f8 > 0 ? fmt(forwardFlops(cfg) / (f8 * 1e9)) : 0;
      row[`${b} fp8 speedup`] = f16 > 0 && f8 > 0 ? fmt(f16 / f8) : 0;
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
        forward: { type: "boolean" },
        fp8: { type: "boolean" },
        "fp8-only": { type: "boolean" },
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
    const firstUnfused = backends.find((b) => getBackend(b)?.family === "UnfusedDotProductAttention");
    const baseline = values.baseline ?? firstUnfused ?? SLOWEST;
    if (baseline !== SLOWEST && !backends.includes(baseline))
      throw new UsageError(
        `--baseline: "${baseline}" is not among the benchmarked backends (or "${SLOWEST}")`,
      );

    const fp8Only = values["fp8-only"] === true;
    const cells: Cell[] = [];
    const total = fp8Only ? 0 : configs.length * backends.length;
    const tty = process.stderr.isTTY;
    for (const name of fp8Only ? [] : configs) {
      for (const b of backends) {
        if (tty) process.stderr.write(progress(cells.length, total, `${name} ${b}`));
        else io.err(`bench ${cells.length + 1}/${total}: ${name} on ${b}`);
        cells.push(await timeCell(configByName(name)!, b, dtype, iters, warmup));
      }
    }
    if (tty && !fp8Only) process.stderr.write(`${progress(total, total, "done")}\n`);
    for (const c of cells.filter((x) => x.reason))
      io.err(`${c.backend} does not run ${c.config}: ${c.reason}`);
    if (!fp8Only)
      for (const line of formatRows(benchRows(cells, configs, backends, baseline, anchor), format))
        io.out(line);
    const fp8 = values.fp8 === true || fp8Only;
    const runConfigs = configs.map((n) => configByName(n)!);
    // The forward alone serves both --forward and --fp8 (its F16 column): timed once.
    const fwd: Cell[] = [];
    if (values.forward || fp8)
      for (const cfg of runConfigs)
        for (const b of backends) {
          io.err(`bench forward: ${cfg.name} on ${b}`);
          fwd.push(await timeCell(cfg, b, dtype, iters, warmup, "fwd"));
        }
    let printed = !fp8Only;
    if (values.forward) {
      if (printed) io.out("");
      for (const line of formatRows(forwardRows(fwd, runConfigs, backends, anchor), format)) io.out(line);
      printed = true;
    }
    if (fp8) {
      const fwdFp8: Cell[] = [];
      for (const cfg of runConfigs)
        for (const b of backends) {
          io.err(`bench --fp8: ${cfg.name} on ${b}`);
          fwdFp8.push(await timeCell(cfg, b, dtype, iters, warmup, "fwd_fp8"));
        }
      for (const c of fwdFp8.filter((x) => x.reason))
        io.err(`${c.backend} runs no FP8 forward of ${c.config}: ${c.reason}`);
      if (printed) io.out("");
      for (const line of formatRows(fp8Rows(fwd, fwdFp8, runConfigs, backends, dtype), format)) io.out(line);
    }
    return 0;
  },
};
