/*
 * TE's DelayedScaling recipe state of FP8 attention kept in device memory (TE keeps fp8_meta's scale,
 * scale_inv and amax_history on the GPU and updates them with its fused amax_and_scale_update kernel):
 * the per-call scaling block of fp8_attention.h is filled from it, the amaxes a call reported are
 * recorded into it, and the scale update runs on it, all queued on the stream without a host copy.
 *
 * This is a device mirror of packages/core's host recipe, which stays the reference (fp8.ts:
 * recordAmax, amaxOfHistory, updateFp8Scale; fp8-attention.ts: recordSharedAmax, kernelScaleOfS).
 * native/cudnn/tests/fp8_node_check.mjs checks over several steps, edge values included, that the
 * state these functions leave equals the one core's functions leave, bit for bit.
 *
 * Layout of the state (one device block of TE_FP8_STATE_BYTES(len) bytes, len = amax_history_len):
 *   double scale[TE_FP8_TENSORS], double scale_inv[TE_FP8_TENSORS]  (core keeps them as JS numbers:
 *       doubles, so the update computes in double and its results equal core's exactly),
 *   float history[TE_FP8_TENSORS][len]  (history[t][0] is this step's amax, [1] the step before, ...;
 *       core's amaxHistory order. Amaxes are fp32 values the kernels report, so fp32 holds them exactly).
 * Tensors are te_fp8_tensor (core's FP8_FORWARD_TENSORS then FP8_BACKWARD_TENSORS).
 */
#ifndef TE_CUDNN_FP8_RECIPE_STATE_H
#define TE_CUDNN_FP8_RECIPE_STATE_H

#include "fp8_attention.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TE_FP8_STATE_SCALE_AT(t) (t)                     /* index into the doubles */
#define TE_FP8_STATE_SCALE_INV_AT(t) (TE_FP8_TENSORS + (t)) /* index into the doubles */
#define TE_FP8_STATE_HISTORY_BYTE (2 * TE_FP8_TENSORS * 8)  /* byte offset of the histories */
#define TE_FP8_STATE_BYTES(len) (TE_FP8_STATE_HISTORY_BYTE + 4 * TE_FP8_TENSORS * (len))

/* The tensors of one pass: forward q, k, v, s, o; backward dO, dP, dQ, dK, dV. */
typedef enum te_fp8_pass { TE_FP8_PASS_FORWARD = 0, TE_FP8_PASS_BACKWARD = 1 } te_fp8_pass;

typedef enum te_fp8_amax_algo { TE_FP8_AMAX_MAX = 0, TE_FP8_AMAX_MOST_RECENT = 1 } te_fp8_amax_algo;

/* The scaling block's slots of the pass's tensors (meta, TE_FP8_META_FLOATS floats) from the state:
 * scale and scale_inv rounded to fp32; k and v take q's, dK and dV take dQ's (TE's one QKV and one
 * dQKV scale); S's scale is capped at the forward format's max and its scale_inv is the inverse of
 * that (core's kernelScaleOfS); the pass's amax slots are zeroed. The other pass's slots are left. */
te_status te_fp8_state_prepare(const void* state, te_fp8_format fwd, te_fp8_pass pass, float* meta, void* stream);

/* Records the amaxes of meta's slots for the tensors in `tensors` (bit t for te_fp8_tensor t) into
 * this step's history entry, as core's recordSharedAmax: the q/k/v group's amax (the max of |amax| of
 * its members in `tensors`) goes into q, k and v, the dQ/dK/dV group's likewise, every other tensor
 * its own; history[0] = max(history[0], |amax|), NaN kept (Math.max). */
te_status te_fp8_state_record(void* state, int64_t history_len, const float* meta, uint32_t tensors, void* stream);

/* TE's scale update of the pass's tensors (core's updateFp8Scale): amax = the history's max (NaN
 * kept) or its most recent entry; when amax is finite and > 0, scale = fp8_max / amax / margin_scale
 * (margin_scale = 2^margin, computed by the caller as core does), else the old scale; when that scale
 * is finite and > 0 it is stored with scale_inv = 1 / scale (else both stay). Then each history rolls
 * one step (history[i] = history[i - 1], history[0] = 0). fp8_max is 448 (E4M3) or 57344 (E5M2), the
 * forward format's for forward tensors and the backward format's for backward ones. */
te_status te_fp8_state_update(void* state, int64_t history_len, te_fp8_format fwd, te_fp8_format bwd,
                              te_fp8_pass pass, te_fp8_amax_algo algo, double margin_scale, void* stream);

#ifdef __cplusplus
}
#endif
#endif
