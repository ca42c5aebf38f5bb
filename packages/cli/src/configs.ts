/**
 * Attention configurations `te run` knows by name: the seed's model configs (TE's test_0..test_3 and
 * the long-sequence ones, as in ../shared/gpu/torch_sdpa_anchor.py) plus a tiny one for smoke tests.
 */
export interface RunConfig {
  readonly name: string;
  readonly b: number;
  readonly h: number;
  readonly hg: number;
  readonly d: number;
  readonly sq: number;
  readonly skv: number;
  readonly mask: "no_mask" | "causal";
  readonly bias: "no_bias" | "post_scale_bias";
}

export const RUN_CONFIGS: readonly RunConfig[] = [
  { name: "test_0", b: 2, h: 16, hg: 16, d: 64, sq: 512, skv: 512, mask: "no_mask", bias: "no_bias" },
  { name: "test_1", b: 2, h: 16, hg: 16, d: 128, sq: 2048, skv: 2048, mask: "causal", bias: "no_bias" },
  {
    name: "test_2",
    b: 2,
    h: 16,
    hg: 16,
    d: 128,
    sq: 2048,
    skv: 2048,
    mask: "causal",
    bias: "post_scale_bias",
  },
  { name: "test_3", b: 2, h: 32, hg: 4, d: 128, sq: 8192, skv: 8192, mask: "causal", bias: "no_bias" },
  {
    name: "long_4k_full",
    b: 8,
    h: 16,
    hg: 16,
    d: 128,
    sq: 4096,
    skv: 4096,
    mask: "no_mask",
    bias: "no_bias",
  },
  {
    name: "long_4k_causal",
    b: 8,
    h: 16,
    hg: 16,
    d: 128,
    sq: 4096,
    skv: 4096,
    mask: "causal",
    bias: "no_bias",
  },
  { name: "tiny", b: 1, h: 2, hg: 2, d: 16, sq: 32, skv: 32, mask: "causal", bias: "no_bias" },
];

export const configByName = (name: string): RunConfig | undefined => RUN_CONFIGS.find((c) => c.name === name);
