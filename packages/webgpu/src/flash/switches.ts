/**
 * Opt-in code-generation switches of the register-tiled programs (throughput profile), read from the
 * environment in Node so that a benchmark can time them beside the defaults until they are measured:
 * - TE_WEBGPU_FLASH_CLASS_LOOPS=1: loops over head-dim words run to the head-dim class (a constant the driver's
 *   compiler can unroll and schedule) instead of the call's dims (a uniform). Correct for every dim up to the
 *   class: tile loads store zeros past the call's dims, so the extra words add zero products.
 * - TE_WEBGPU_FLASH_PREFETCH=1: the forward loads the next K/V tile into registers while it computes on the
 *   current one (tiles with their own V array; either profile). SwiftShader's compiler does not finish these
 *   programs (its memory grew past 8 GB in minutes), so CI cannot check them: GPU runs only.
 * - TE_WEBGPU_FLASH_LOAD_BATCH=8|32|64: global loads a lane issues before it stores any in a tile load (16 by
 *   default; tile-wgsl.ts).
 * - TE_WEBGPU_FLASH_REDO_ALL=1 (tests of the GPU job): the one-pass matrix forward marks every workgroup for its
 *   redo, so that conformance runs check the redo path (matrix-forward-wgsl.ts) as well.
 */
const env = (): Record<string, string | undefined> | undefined =>
  (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;

export const classLoops = (): boolean => env()?.TE_WEBGPU_FLASH_CLASS_LOOPS === "1";

export const prefetch = (): boolean => env()?.TE_WEBGPU_FLASH_PREFETCH === "1";

const LOAD_BATCHES = [8, 16, 32, 64];

export const loadBatch = (): number => {
  const n = Number(env()?.TE_WEBGPU_FLASH_LOAD_BATCH);
  return LOAD_BATCHES.includes(n) ? n : 16;
};

export const redoAll = (): boolean => env()?.TE_WEBGPU_FLASH_REDO_ALL === "1";
