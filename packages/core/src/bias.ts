/** Bias types and shapes with Transformer Engine's names. */
export const BIAS_TYPES = ["no_bias", "pre_scale_bias", "post_scale_bias", "alibi"] as const;
export type BiasType = (typeof BIAS_TYPES)[number];

/** Shape of a bias tensor `[B|1, H|1, sq, skv]`. */
export const BIAS_SHAPES = ["1hss", "b1ss", "bhss", "11ss"] as const;
export type BiasShape = (typeof BIAS_SHAPES)[number];

export const isBiasType = (x: unknown): x is BiasType => (BIAS_TYPES as readonly unknown[]).includes(x);
export const isBiasShape = (x: unknown): x is BiasShape => (BIAS_SHAPES as readonly unknown[]).includes(x);

/** The dims of a bias of the given shape. */
export function biasDims(shape: BiasShape, b: number, h: number, sq: number, skv: number): number[] {
  return [shape[0] === "b" ? b : 1, shape[1] === "h" ? h : 1, sq, skv];
}
