import type { TeControls } from "./env.js";
import { ArgumentError } from "./errors.js";
import { log } from "./logging.js";
import { isCausal, type MaskType } from "./mask.js";

/**
 * TE's check_set_window_size: the sliding window [left, right] a mask type allows (-1 = unbounded).
 * Causal masks take (-1, 0) or (>=0, 0): no window means (-1, 0); (-1, -1) and (>=0, !=0) are brought
 * to (left, 0) with a warning; anything else (a negative left with right != 0) is an error. The other
 * masks (no_mask, padding, arbitrary) take (-1, -1) or (>=0, >=0): no window means (-1, -1); (-1, 0),
 * a causal default carried over, becomes (-1, -1) with a warning; one-sided windows are errors.
 * Errors are ArgumentErrors naming `window_size`.
 */
export function checkSetWindowSize(
  maskType: MaskType,
  windowSize: readonly [number, number] | readonly number[] | null | undefined,
  controls?: TeControls,
  argument = "window_size",
): [number, number] {
  const causal = isCausal(maskType);
  const allowed = causal ? "(-1, 0) or (>=0, 0)" : "(-1, -1) or (>=0, >=0)";
  if (windowSize === null || windowSize === undefined) return causal ? [-1, 0] : [-1, -1];
  const fail = (): never => {
    throw new ArgumentError(argument, `${allowed} for attn_mask_type "${maskType}"`, windowSize);
  };
  if (!Array.isArray(windowSize) || windowSize.length !== 2) fail();
  const [left, right] = windowSize as readonly number[];
  for (const x of [left, right]) if (typeof x !== "number" || !Number.isInteger(x) || x < -1) fail();
  const warn = (fixed: [number, number]): [number, number] => {
    if (controls) {
      log(
        "WARNING",
        controls,
        `window_size should be ${allowed} for attn_mask_type=${maskType}; using (${fixed.join(", ")})`,
      );
    }
    return fixed;
  };
  if (causal) {
    if (right === 0) return [left, 0];
    if (left >= 0 || right === -1) return warn([left, 0]);
    return fail();
  }
  if (left === -1 && right === 0) return warn([-1, -1]);
  if ((left === -1) !== (right === -1)) return fail();
  return [left, right];
}

/** Whether a window restricts anything ([-1, -1] is no window; causal's [-1, 0] is the mask itself). */
export function hasSlidingWindow(window: readonly [number, number], maskType: MaskType): boolean {
  if (isCausal(maskType)) return window[0] !== -1;
  return window[0] !== -1 || window[1] !== -1;
}

/**
 * TE's bottom_right_diagonal default: false for causal and padding_causal (top-left), true for
 * every other mask type. The *_bottom_right masks are bottom-right whatever is asked, and
 * causal/padding_causal top-left; only for no_mask, padding and arbitrary does an explicit value
 * change the alignment of windows and ALiBi (see isBottomRightAligned in semantics.ts).
 */
export function resolveBottomRightDiagonal(maskType: MaskType, given: boolean | null | undefined): boolean {
  if (given === null || given === undefined) return !(maskType === "causal" || maskType === "padding_causal");
  if (typeof given !== "boolean") throw new ArgumentError("bottom_right_diagonal", "a boolean", given);
  return given;
}
