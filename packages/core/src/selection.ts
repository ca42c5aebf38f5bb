import type { AttentionBackend, SelectionContext, TeFamily } from "./backend.js";
import { readControls, type TeControls } from "./env.js";
import { TeError } from "./errors.js";
import { log, logEnabled } from "./logging.js";
import { type AttentionParams, paramsKey } from "./params.js";
import { listBackends, registryVersion } from "./registry.js";
import type { Reason } from "./rules.js";

/** Per-call overrides of the environment's controls. */
export interface SelectionOptions {
  /** Only these backend ids are candidates (in this order of preference if `strictOrder`). */
  readonly backends?: readonly string[];
  /** These backend ids are never candidates. */
  readonly exclude?: readonly string[];
  /** Overrides of TE's controls (what NVTE_* would set). */
  readonly controls?: Partial<TeControls>;
  /** CUDA arch of the device the call runs on; defaults to what `setCudaArch` recorded. */
  readonly cudaArch?: number | null;
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export interface BackendVerdict {
  readonly id: string;
  readonly family: TeFamily;
  readonly subBackend?: number;
  readonly eligible: boolean;
  readonly reasons: readonly Reason[];
}

export interface Selection {
  readonly backend: AttentionBackend<unknown>;
  readonly subBackend?: number;
  /** Every candidate considered, in TE's order, with its verdict. */
  readonly verdicts: readonly BackendVerdict[];
}

/** Thrown when no backend can run a call: lists every backend's reasons. */
export class NoBackendError extends TeError {
  readonly verdicts: readonly BackendVerdict[];
  constructor(p: AttentionParams, verdicts: readonly BackendVerdict[]) {
    const lines = verdicts.map(
      (v) => `  ${v.id} (${v.family}): ${v.reasons.map((r) => `${r.message} [${r.rule}]`).join("; ")}`,
    );
    const none = verdicts.length === 0 ? [`  no backend is registered for ${p.device} tensors`] : lines;
    super("TE_NO_BACKEND", `No attention backend can run this call:\n${none.join("\n")}`);
    this.name = "NoBackendError";
    this.verdicts = verdicts;
  }
}

const FAMILY_CONTROL: Record<TeFamily, { key: "flash" | "fused" | "unfused"; env: string }> = {
  FlashAttention: { key: "flash", env: "NVTE_FLASH_ATTN" },
  FusedAttention: { key: "fused", env: "NVTE_FUSED_ATTN" },
  UnfusedDotProductAttention: { key: "unfused", env: "NVTE_UNFUSED_ATTN" },
};

/**
 * TE's candidate order: on sm90+ cuDNN (FusedAttention) before flash; on sm80-sm89 flash before cuDNN;
 * unfused last. Without CUDA, our own flash-style kernels (CPU, WebGPU) come first, then fused
 * framework ops, then framework-native (unfused) graphs. Backends add an offset within a family.
 */
export function teRank(family: TeFamily, cudaArch: number | null): number {
  if (family === "UnfusedDotProductAttention") return 20;
  const fusedFirst = cudaArch !== null && cudaArch >= 90;
  if (family === "FusedAttention") return fusedFirst ? 0 : 10;
  return fusedFirst ? 10 : 0;
}

let defaultCudaArch: number | null = null;
/** Recorded by @te/native when it finds a CUDA device. */
export function setCudaArch(arch: number | null): void {
  defaultCudaArch = arch;
}
/** The CUDA arch recorded by setCudaArch (null without a CUDA device). */
export function getCudaArch(): number | null {
  return defaultCudaArch;
}

const cache = new Map<string, Selection>();
export function clearSelectionCache(): void {
  cache.clear();
}

function resolveControls(options: SelectionOptions): TeControls {
  return { ...readControls(options.env), ...options.controls };
}

/** Asks every candidate backend about `p`, in order, without running anything. */
export function explainAll(p: AttentionParams, options: SelectionOptions = {}): BackendVerdict[] {
  const controls = resolveControls(options);
  const context: SelectionContext = {
    cudaArch: options.cudaArch === undefined ? defaultCudaArch : options.cudaArch,
    env: options.env ?? {},
    preferredSubBackend: controls.fusedBackend,
  };
  const candidates = listBackends()
    .filter((b) => b.tensors.kind === p.device)
    .sort((a, b) => a.rank(context) - b.rank(context));
  return candidates.map((backend) => verdictOf(backend, p, controls, context, options));
}

function verdictOf(
  backend: AttentionBackend<unknown>,
  p: AttentionParams,
  controls: TeControls,
  context: SelectionContext,
  options: SelectionOptions,
): BackendVerdict {
  const reasons: Reason[] = [];
  const control = FAMILY_CONTROL[backend.family];
  if (!controls[control.key]) reasons.push({ rule: "env.disabled", message: `disabled by ${control.env}=0` });
  if (options.backends && !options.backends.includes(backend.id)) {
    reasons.push({ rule: "options.not_requested", message: "not among the backends requested in options" });
  }
  if (options.exclude?.includes(backend.id)) {
    reasons.push({ rule: "options.excluded", message: "excluded in options" });
  }
  if (!backend.dtypes.includes(p.dtype)) {
    reasons.push({
      rule: "dtype",
      message: `does not support dtype ${p.dtype} (supports ${backend.dtypes.join(", ")})`,
    });
  }
  // NVTE_FUSED_ATTN_BACKEND is a preference the backend applies where it can (TE never disables
  // FusedAttention for it); the chosen sub-backend is reported and logged.
  const subBackend = backend.subBackend?.(p, controls.fusedBackend);
  if (reasons.length === 0) {
    const e = backend.explain(p, context);
    if (!e.ok) reasons.push(...e.reasons);
  }
  return { id: backend.id, family: backend.family, subBackend, eligible: reasons.length === 0, reasons };
}

const nameOf = (v: BackendVerdict): string =>
  `${v.family} backend (${v.subBackend === undefined ? v.id : `${v.id}, sub-backend ${v.subBackend}`})`;

/**
 * Picks the backend for `p`: the first eligible candidate in TE's order. Decisions are cached per
 * params, controls and registry state; with NVTE_DEBUG the decision is logged in TE's words.
 */
export function selectBackend(p: AttentionParams, options: SelectionOptions = {}): Selection {
  const controls = resolveControls(options);
  const key = JSON.stringify([
    paramsKey(p),
    controls,
    options.backends,
    options.exclude,
    options.cudaArch ?? defaultCudaArch,
    registryVersion(),
  ]);
  const hit = cache.get(key);
  if (hit) return hit;

  const verdicts = explainAll(p, options);
  if (logEnabled("DEBUG", controls)) {
    log("DEBUG", controls, `Running with config=${JSON.stringify(p)}`);
    for (const v of verdicts.filter((x) => !x.eligible)) {
      log(
        "DEBUG",
        controls,
        `Disabling ${v.family} (${v.id}) as it ${v.reasons.map((r) => r.message).join("; ")}`,
      );
    }
    const available = verdicts
      .map(
        (v) =>
          `${v.id}=${v.eligible ? "True" : "False"}${v.eligible && v.subBackend !== undefined ? ` (sub-backend ${v.subBackend})` : ""}`,
      )
      .join(", ");
    log("DEBUG", controls, `Available backends = {${available}}`);
  }
  const chosen = verdicts.find((v) => v.eligible);
  if (!chosen) throw new NoBackendError(p, verdicts);
  const backend = listBackends().find((b) => b.id === chosen.id)!;
  log("DEBUG", controls, `Selected backend = ${nameOf(chosen)}`);
  log("INFO", controls, `Running with ${nameOf(chosen)}`);
  const selection: Selection = { backend, subBackend: chosen.subBackend, verdicts };
  cache.set(key, selection);
  return selection;
}
