/** Storage dtypes of attention tensors. Math is always at least fp32 (the reference uses fp64). */
export const DTYPES = ["fp32", "fp16", "bf16", "fp8e4m3", "fp8e5m2"] as const;
export type DType = (typeof DTYPES)[number];

export const DTYPE_BYTES: Record<DType, number> = { fp32: 4, fp16: 2, bf16: 2, fp8e4m3: 1, fp8e5m2: 1 };

export const isFp8 = (dtype: DType): boolean => dtype === "fp8e4m3" || dtype === "fp8e5m2";
export const isDType = (x: unknown): x is DType => (DTYPES as readonly unknown[]).includes(x);
