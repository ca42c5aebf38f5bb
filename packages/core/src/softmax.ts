/**
 * Softmax variants (TE's softmax_type): `off_by_one` adds a zero logit to every row's normaliser,
 * `learnable` adds a per-head learnt logit (the softmax offset, [h]).
 */
export const SOFTMAX_TYPES = ["vanilla", "off_by_one", "learnable"] as const;
export type SoftmaxType = (typeof SOFTMAX_TYPES)[number];
export const isSoftmaxType = (x: unknown): x is SoftmaxType => (SOFTMAX_TYPES as readonly unknown[]).includes(x);
