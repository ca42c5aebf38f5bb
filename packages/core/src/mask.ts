/** Attention mask types with Transformer Engine's names. */
export const MASK_TYPES = [
  "no_mask",
  "padding",
  "causal",
  "padding_causal",
  "causal_bottom_right",
  "padding_causal_bottom_right",
  "arbitrary",
] as const;
export type MaskType = (typeof MASK_TYPES)[number];

export const isMaskType = (x: unknown): x is MaskType => (MASK_TYPES as readonly unknown[]).includes(x);
export const isCausal = (m: MaskType): boolean => m.includes("causal");
export const isPadding = (m: MaskType): boolean => m.startsWith("padding");
export const isBottomRightMask = (m: MaskType): boolean => m.endsWith("bottom_right");
