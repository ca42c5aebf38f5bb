import type { ConformanceDType } from "./feed.js";

/** The elementwise tolerance `|x - ref| <= atol + rtol * |ref|`. */
export interface Tolerance {
  readonly atol: number;
  readonly rtol: number;
}

/** FORMAT.md's tolerances per storage dtype of the run. */
export const CONFORMANCE_TOLERANCES: Readonly<Record<ConformanceDType, Tolerance>> = {
  fp32: { atol: 1e-4, rtol: 1e-4 },
  fp16: { atol: 1e-2, rtol: 1e-2 },
  bf16: { atol: 2.5e-2, rtol: 2.5e-2 },
};

/** How one tensor compared with its expected values. */
export interface TensorCheck {
  readonly tensor: string;
  readonly passed: boolean;
  /** Largest |x - ref| (Infinity where an infinity is not matched, NaN where x is NaN). */
  readonly maxAbsError: number;
  readonly mismatches: number;
  readonly count: number;
  /** The first element out of tolerance. */
  readonly firstMismatch?: { readonly index: number; readonly got: number; readonly want: number };
}

/**
 * Compares values with expected ones: NaN never passes, an infinite reference (lse of an empty row)
 * must be matched exactly, everything else within the tolerance.
 */
export function compareValues(
  tensor: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: Tolerance,
): TensorCheck {
  if (got.length !== want.length) {
    return {
      tensor,
      passed: false,
      maxAbsError: Number.NaN,
      mismatches: Math.max(got.length, want.length),
      count: want.length,
      firstMismatch: { index: -1, got: got.length, want: want.length },
    };
  }
  let maxAbsError = 0;
  let mismatches = 0;
  let firstMismatch: TensorCheck["firstMismatch"];
  for (let i = 0; i < want.length; i++) {
    const x = got[i];
    const ref = want[i];
    let ok: boolean;
    let err: number;
    if (Number.isNaN(x) || Number.isNaN(ref)) {
      ok = false;
      err = Number.NaN;
    } else if (!Number.isFinite(ref) || !Number.isFinite(x)) {
      ok = x === ref;
      err = ok ? 0 : Number.POSITIVE_INFINITY;
    } else {
      err = Math.abs(x - ref);
      ok = err <= tol.atol + tol.rtol * Math.abs(ref);
    }
    // Once NaN, the maximum stays NaN (NaN > x is false).
    if (Number.isNaN(err)) maxAbsError = Number.NaN;
    else if (err > maxAbsError) maxAbsError = err;
    if (!ok) {
      mismatches++;
      firstMismatch ??= { index: i, got: x, want: ref };
    }
  }
  return { tensor, passed: mismatches === 0, maxAbsError, mismatches, count: want.length, firstMismatch };
}
