/*
 * FP8 attention through cuDNN (TE's FusedAttention sub-backend 2) and the FP16/BF16 <-> FP8 casts of
 * TE's DelayedScaling recipe at the edges of fp8_dpa. Built with the cuda.cudnn family (CUDA builds).
 *
 * Scaling state is one block of fp32 in device memory, float meta[TE_FP8_META_FLOATS]: for each FP8
 * tensor t of attention (TE's fp8_meta entries) its scale at TE_FP8_SCALE(t), its scale_inv at
 * TE_FP8_SCALE_INV(t) and this step's amax at TE_FP8_AMAX(t). Calls read scales and scale_invs and
 * write the amax of the tensors they produce: the graphs overwrite amax S, O (forward) and dP, dQ,
 * dK, dV (backward); te_fp8_quantize max-accumulates into its amax slot (callers zero it first), so
 * q, k, v cast one after another share one amax as they share one scale in TE.
 * The S scale must not exceed the forward format's max: cuDNN quantises the unnormalised
 * exp(s - rowmax), which is 1 somewhere in every row, while the amax it reports for S is that of the
 * normalised probabilities (packages/core's kernelScaleOfS caps the recipe's scale so).
 *
 * Tensors use te_attn_fwd_args / te_attn_bwd_args: for FP8 tensors data points at one-byte
 * elements and strides count elements as always. desc->dtype is not read by the FP8 calls.
 */
#ifndef TE_CUDNN_FP8_ATTENTION_H
#define TE_CUDNN_FP8_ATTENTION_H

#include "te/te_attention.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum te_fp8_format { TE_FP8_E4M3 = 0, TE_FP8_E5M2 = 1 } te_fp8_format;

/* The FP8 tensors of attention, in the order of packages/core/src/fp8.ts. */
typedef enum te_fp8_tensor {
  TE_FP8_Q = 0, TE_FP8_K, TE_FP8_V, TE_FP8_S, TE_FP8_O,
  TE_FP8_DO, TE_FP8_DP, TE_FP8_DQ, TE_FP8_DK, TE_FP8_DV,
  TE_FP8_TENSORS
} te_fp8_tensor;

#define TE_FP8_SCALE(t) (3 * (t))
#define TE_FP8_SCALE_INV(t) (3 * (t) + 1)
#define TE_FP8_AMAX(t) (3 * (t) + 2)
#define TE_FP8_META_FLOATS (3 * TE_FP8_TENSORS)

/* Why FP8 attention cannot run desc through cuDNN on the current device (TE_OK and "" when it can):
 * fwd is the format of q, k, v, o, bwd that of dO, dP, dq, dk, dv; backward != 0 asks for both passes. */
te_status te_cudnn_fp8_explain(const te_attn_desc* desc, te_fp8_format fwd, te_fp8_format bwd, int backward,
                               char* reason, size_t reason_size);

/* o (FP8, format fwd, scale O) and lse from FP8 q, k, v. */
te_status te_cudnn_fp8_forward(const te_attn_desc* desc, te_fp8_format fwd, const te_attn_fwd_args* args,
                               float* meta);

/* dq, dk, dv (FP8, format bwd, their scales) from the forward's FP8 q, k, v, o and lse and FP8 dO. */
te_status te_cudnn_fp8_backward(const te_attn_desc* desc, te_fp8_format fwd, te_fp8_format bwd,
                                const te_attn_bwd_args* args, float* meta);

/* y[i] = fp8(x[i] * meta[TE_FP8_SCALE(t)]) saturating to the format's max, for n contiguous elements
 * of src (TE_F32, TE_F16 or TE_BF16); max-accumulates amax(|x|) into meta[TE_FP8_AMAX(t)] (NaN wins). */
te_status te_fp8_quantize(te_dtype src, const void* x, int64_t n, te_fp8_format dst, void* y, float* meta,
                          te_fp8_tensor t, void* stream);

/* y[i] = x[i] * meta[TE_FP8_SCALE_INV(t)] in dst (TE_F32, TE_F16 or TE_BF16). */
te_status te_fp8_dequantize(te_fp8_format src, const void* x, int64_t n, te_dtype dst, void* y, const float* meta,
                            te_fp8_tensor t, void* stream);

#ifdef __cplusplus
}
#endif
#endif
