/**
 * Transformer Engine's user controls, read from the environment with TE's names and defaults.
 * Options passed in code override them (see selection.ts).
 */
export interface TeControls {
  /** NVTE_FLASH_ATTN (default 1): 0 disables FlashAttention-family backends. */
  readonly flash: boolean;
  /** NVTE_FUSED_ATTN (default 1): 0 disables FusedAttention-family backends. */
  readonly fused: boolean;
  /** NVTE_UNFUSED_ATTN (default 1): 0 disables the unfused backends. */
  readonly unfused: boolean;
  /** NVTE_FUSED_ATTN_BACKEND: the preferred fused sub-backend (0, 1, 2), or null for automatic. */
  readonly fusedBackend: number | null;
  /** NVTE_ALLOW_NONDETERMINISTIC_ALGO (default 1): 0 asks for deterministic backward passes. */
  readonly allowNondeterministic: boolean;
  /** NVTE_FP8_DPA_BWD (default 1): 0 keeps the backward pass of FP8 attention in F16/BF16. */
  readonly fp8DpaBackward: boolean;
  /** NVTE_DEBUG (default 0) and NVTE_DEBUG_LEVEL (default 0): 1 = info, 2 = debug (reasons and config). */
  readonly debug: boolean;
  readonly debugLevel: number;
}

export type Env = Readonly<Record<string, string | undefined>>;

const flag = (env: Env, name: string, fallback: boolean): boolean => {
  const v = env[name];
  if (v === undefined || v === "") return fallback;
  return v !== "0" && v.toLowerCase() !== "false";
};

const integer = (env: Env, name: string): number | null => {
  const v = env[name];
  if (v === undefined || v === "") return null;
  const n = Number.parseInt(v, 10);
  return Number.isFinite(n) ? n : null;
};

/** The process environment where there is one (Node), else empty (browsers). */
export function processEnv(): Env {
  const g = globalThis as { process?: { env?: Env } };
  return g.process?.env ?? {};
}

export function readControls(env: Env = processEnv()): TeControls {
  return {
    flash: flag(env, "NVTE_FLASH_ATTN", true),
    fused: flag(env, "NVTE_FUSED_ATTN", true),
    unfused: flag(env, "NVTE_UNFUSED_ATTN", true),
    fusedBackend: integer(env, "NVTE_FUSED_ATTN_BACKEND"),
    allowNondeterministic: flag(env, "NVTE_ALLOW_NONDETERMINISTIC_ALGO", true),
    fp8DpaBackward: flag(env, "NVTE_FP8_DPA_BWD", true),
    debug: flag(env, "NVTE_DEBUG", false),
    debugLevel: integer(env, "NVTE_DEBUG_LEVEL") ?? 0,
  };
}
