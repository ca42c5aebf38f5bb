import type { AttentionParams } from "./params.js";

/** Why a backend cannot run a call: a stable rule id and a sentence for people. */
export interface Reason {
  readonly rule: string;
  readonly message: string;
}

export type Eligibility =
  | { readonly ok: true; readonly note?: string }
  | { readonly ok: false; readonly reasons: readonly Reason[] };

/**
 * One eligibility rule, as a table row: `rejects(p)` is true when the backend cannot run `p`.
 * `message` says why in TE's words ("does not support ...").
 */
export interface Rule<C = void> {
  readonly id: string;
  readonly rejects: (p: AttentionParams, context: C) => boolean;
  readonly message: string | ((p: AttentionParams, context: C) => string);
}

/** Evaluates every row of a rule table; all reasons are reported, not only the first. */
export function evaluateRules<C>(rules: readonly Rule<C>[], p: AttentionParams, context: C): Eligibility {
  const reasons: Reason[] = [];
  for (const rule of rules) {
    if (rule.rejects(p, context)) {
      const message = typeof rule.message === "function" ? rule.message(p, context) : rule.message;
      reasons.push({ rule: rule.id, message });
    }
  }
  return reasons.length === 0 ? { ok: true } : { ok: false, reasons };
}

export const OK: Eligibility = { ok: true };
export const reject = (rule: string, message: string): Eligibility => ({ ok: false, reasons: [{ rule, message }] });
