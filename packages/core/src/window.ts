import type { TeControls } from "./env.js";
import { ArgumentError } from "./errors.js";
import { log } from "./logging.js";
import { isCausal, type MaskType } from "./mask.js";

/**
 * TE's check_set_window_size: the sliding window [left, right] a mask type allows (-1 = unbounded).
 * Causal masks fix right = 0: no window means [-1, 0], and a window with right != 0 is brought to
 * right = 0 with a warning (TE does the same). Other masks (no_mask, padding, arbitrary) take any
 * window of integers >= -1 and default to [-1, -1]. Anything else is an ArgumentError naming
 * `window_size`.
 */
export function checkSetWindowSize(
  maskType: MaskType,
  windowSize: readonly [number, number] | readonly number[] | null | undefined,
  controls?: TeControls,
  argument = "window_size",
): [number, number] {
  const causal = isCausal(maskType);
  if (windowSize === null || windowSize === undefined) return causal ? [-1, 0] : [-1, -1];
  if (!Array.isArray(windowSize) || windowSize.length !== 2) {
    throw new ArgumentError(argument, "a pair [left, right] of integers >= -1 (or null)", windowSize);
  }
  const [left, right] = windowSize as readonly number[];
  for (const x of [left, right]) {
    if (typeof x !== "number" || !Number.isInteger(x) || x < -1) {
      throw new ArgumentError(
        argument,
        "a pair [left, right] of integers >= -1 (-1 = unbounded)",
        windowSize,
      );
    }
  }
  if (causal && right !== 0) {
    if (controls) {
      log(
        "WARNING",
        controls,
        `window_size should be (-1, 0) or (>=0, 0) for attn_mask_type=${maskType}; using (${left}, 0)`,
      );
    }
    return [left, 0];
  }
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
