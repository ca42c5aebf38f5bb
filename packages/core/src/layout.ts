/**
 * QKV formats and layouts with Transformer Engine's names.
 * A layout names how q, k and v sit in memory: `bs3hd` is one [b, s, 3, h, d] buffer, `bshd_bs2hd` is q
 * alone and k/v interleaved in one [b, s, 2, h, d] buffer, `bshd_bshd_bshd` is three separate tensors.
 */
export const QKV_FORMATS = ["sbhd", "bshd", "thd"] as const;
export type QkvFormat = (typeof QKV_FORMATS)[number];

export const QKV_LAYOUTS = [
  "sb3hd", "sbh3d", "sbhd_sb2hd", "sbhd_sbh2d", "sbhd_sbhd_sbhd",
  "bs3hd", "bsh3d", "bshd_bs2hd", "bshd_bsh2d", "bshd_bshd_bshd",
  "t3hd", "th3d", "thd_t2hd", "thd_th2d", "thd_thd_thd",
] as const;
export type QkvLayout = (typeof QKV_LAYOUTS)[number];

/** TE's layout groups: where the packing dimension sits, independent of the format. */
export const QKV_LAYOUT_GROUPS = ["3hd", "h3d", "hd_2hd", "hd_h2d", "hd_hd_hd"] as const;
export type QkvLayoutGroup = (typeof QKV_LAYOUT_GROUPS)[number];

export const isQkvFormat = (x: unknown): x is QkvFormat => (QKV_FORMATS as readonly unknown[]).includes(x);
export const isQkvLayout = (x: unknown): x is QkvLayout => (QKV_LAYOUTS as readonly unknown[]).includes(x);

const FORMAT_PREFIX: Record<QkvFormat, string> = { sbhd: "sb", bshd: "bs", thd: "t" };

/** The format of a layout: `bshd_bs2hd` → `bshd`. */
export function qkvFormatOf(layout: QkvLayout): QkvFormat {
  if (layout.startsWith("sb")) return "sbhd";
  if (layout.startsWith("bs")) return "bshd";
  return "thd";
}

/** The layout group of a layout: `bshd_bs2hd` → `hd_2hd`. */
export function qkvLayoutGroupOf(layout: QkvLayout): QkvLayoutGroup {
  const prefix = FORMAT_PREFIX[qkvFormatOf(layout)];
  const group = layout.split("_").map((part) => part.slice(prefix.length)).join("_");
  return group as QkvLayoutGroup;
}

/** The layout of a format and group: (`thd`, `h3d`) → `th3d`. */
export function qkvLayoutOf(format: QkvFormat, group: QkvLayoutGroup): QkvLayout {
  const prefix = FORMAT_PREFIX[format];
  return group
    .split("_")
    .map((part) => prefix + part)
    .join("_") as QkvLayout;
}

/** The format q is in (TE's get_q_format); all 15 layouts share one format for q and kv. */
export const qFormatOf = qkvFormatOf;
/** The format k and v are in (TE's get_kv_format). */
export const kvFormatOf = qkvFormatOf;

/** How many separate buffers a layout group uses: 1 (qkv packed), 2 (q + kv packed) or 3. */
export function bufferCountOf(group: QkvLayoutGroup): 1 | 2 | 3 {
  if (group === "3hd" || group === "h3d") return 1;
  if (group === "hd_2hd" || group === "hd_h2d") return 2;
  return 3;
}
