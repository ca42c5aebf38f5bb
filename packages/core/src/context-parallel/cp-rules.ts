import type { AttentionBackend, SelectionContext } from "../backend.js";
import { isCausal, type MaskType } from "../mask.js";
import type { AttentionParams } from "../params.js";
import { type Eligibility, evaluateRules, type Reason, type Rule } from "../rules.js";
import { type BlockShape, blockParams, hasBackwardFromStats, NO_STATS_MESSAGE } from "./block-call.js";

/** TE's cp_comm_type values. */
export const CP_ALGORITHMS = ["p2p", "all_gather", "a2a"] as const;
export type CpAlgorithm = (typeof CP_ALGORITHMS)[number];
export const isCpAlgorithm = (x: unknown): x is CpAlgorithm =>
  (CP_ALGORITHMS as readonly unknown[]).includes(x);

const SEQUENCE_MASKS: readonly MaskType[] = ["no_mask", "causal"];
const THD_MASKS: readonly MaskType[] = ["padding", "padding_causal"];

interface CpRuleContext {
  readonly algorithm: CpAlgorithm;
  readonly backend: AttentionBackend<unknown>;
}

/**
 * What the context-parallel algorithms here support, as rule rows (ids "cp.*"). Each row is a limit
 * of this implementation or of the algorithm (as in TE), reported as a reason, never a crash.
 */
export const CP_RULES: readonly Rule<CpRuleContext>[] = [
  {
    id: "cp.format",
    rejects: (p, c) => p.qkvFormat === "thd" && c.algorithm !== "p2p",
    message: (_p, c) => `thd with context parallelism needs cp_comm_type p2p, not ${c.algorithm}`,
  },
  {
    id: "cp.mask",
    rejects: (p) => !(p.qkvFormat === "thd" ? THD_MASKS : SEQUENCE_MASKS).includes(p.maskType),
    message: (p) =>
      p.qkvFormat === "thd"
        ? `context parallelism on thd supports padding and padding_causal masks, not ${p.maskType}`
        : `context parallelism on ${p.qkvFormat} supports no_mask and causal masks, not ${p.maskType}`,
  },
  {
    id: "cp.causal_lengths",
    rejects: (p) => isCausal(p.maskType) && p.sq !== p.skv,
    message: (p) => `a causal mask with context parallelism needs sq == skv (got ${p.sq} and ${p.skv})`,
  },
  {
    id: "cp.divisible",
    rejects: (p) => p.sq % (2 * p.cpSize) !== 0 || p.skv % (2 * p.cpSize) !== 0,
    message: (p) =>
      `sequence lengths must be multiples of 2·cp_size = ${2 * p.cpSize} (got ${p.sq} and ${p.skv})`,
  },
  {
    id: "cp.bias",
    rejects: (p) => p.biasType !== "no_bias",
    message: (p) => `context parallelism does not support ${p.biasType}`,
  },
  {
    id: "cp.alibi",
    rejects: (p) => p.alibiSlopes !== null,
    message: "context parallelism does not support ALiBi",
  },
  {
    id: "cp.dropout",
    rejects: (p) => p.dropout !== 0,
    message: "context parallelism here does not support dropout (block-wise RNG offsets are not implemented)",
  },
  {
    id: "cp.fp8",
    rejects: (p) => p.fp8 !== null || p.dtype === "fp8e4m3" || p.dtype === "fp8e5m2",
    message: "context parallelism here does not support FP8",
  },
  {
    // a2a keeps whole rows on one rank; all_gather attends each query chunk to its whole key prefix
    // with a bottom-right causal mask, which aligns a window correctly; p2p splits rows.
    id: "cp.window",
    rejects: (p, c) =>
      (p.window[0] !== -1 || p.window[1] !== -1) &&
      !(c.algorithm === "a2a" || (c.algorithm === "all_gather" && isCausal(p.maskType))),
    message: (_p, c) =>
      `sliding windows with context parallelism need cp_comm_type a2a, or all_gather with a causal mask (got ${c.algorithm})`,
  },
  {
    id: "cp.softmax",
    rejects: (p, c) =>
      p.softmaxType === "learnable" || (c.algorithm === "p2p" && p.softmaxType !== "vanilla"),
    message: (p, c) =>
      p.softmaxType === "learnable"
        ? "context parallelism does not support the learnable softmax offset"
        : `softmax_type ${p.softmaxType} with context parallelism needs cp_comm_type a2a or all_gather, not ${c.algorithm}`,
  },
  {
    id: "cp.a2a_heads",
    rejects: (p, c) => c.algorithm === "a2a" && (p.h % p.cpSize !== 0 || p.hg % p.cpSize !== 0),
    message: (p) =>
      `cp_comm_type a2a needs head counts divisible by cp_size ${p.cpSize} (h ${p.h}, hg ${p.hg})`,
  },
  {
    id: "cp.backward_from_stats",
    rejects: (p, c) => c.algorithm === "p2p" && p.isTraining && !hasBackwardFromStats(c.backend),
    message: NO_STATS_MESSAGE,
  },
];

/** The block calls an algorithm makes for `p` (their distinct shapes), to ask the backend about. */
export function blockShapesOf(p: AttentionParams, algorithm: CpAlgorithm): BlockShape[] {
  const cp = p.cpSize;
  const [sq, skv] = [p.sq / cp, p.skv / cp];
  if (algorithm === "a2a")
    return [{ sq: p.sq, skv: p.skv, maskType: p.maskType, h: p.h / cp, hg: p.hg / cp }];
  if (algorithm === "all_gather") {
    if (!isCausal(p.maskType)) return [{ sq, skv: p.skv, maskType: "no_mask" }];
    return [{ sq: sq / 2, skv: skv / 2, maskType: "causal_bottom_right" }];
  }
  const [full, diagonal] =
    p.qkvFormat === "thd" ? (["padding", "padding_causal"] as const) : (["no_mask", "causal"] as const);
  if (!isCausal(p.maskType)) return [{ sq, skv, maskType: full }];
  return [
    { sq, skv, maskType: diagonal },
    { sq, skv: skv / 2, maskType: full },
    { sq: sq / 2, skv, maskType: full },
  ];
}

/**
 * Whether `backend` can run `p` split over p.cpSize ranks with `algorithm`: the cp rules, then the
 * backend's own verdict on each kind of block call it would make (its reasons, prefixed).
 */
export function explainContextParallel(
  backend: AttentionBackend<unknown>,
  p: AttentionParams,
  algorithm: CpAlgorithm,
  context: SelectionContext = { cudaArch: null, env: {} },
): Eligibility {
  const own = evaluateRules(CP_RULES, p, { algorithm, backend });
  if (!own.ok) return own;
  const reasons: Reason[] = [];
  if (!backend.dtypes.includes(p.dtype)) {
    reasons.push({ rule: "dtype", message: `${backend.id} does not support dtype ${p.dtype}` });
  }
  for (const shape of blockShapesOf(p, algorithm)) {
    const verdict = backend.explain(blockParams(p, p.qkvFormat, backend.tensors.kind, shape), context);
    if (verdict.ok) continue;
    const where = `${algorithm} block (sq ${shape.sq}, skv ${shape.skv}, ${shape.maskType})`;
    for (const r of verdict.reasons) reasons.push({ rule: r.rule, message: `${where}: ${r.message}` });
  }
  return reasons.length === 0 ? { ok: true } : { ok: false, reasons };
}
