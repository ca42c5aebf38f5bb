/*
 * The attention C API: one descriptor of the call (every AttentionParams field the kernels need) and
 * one argument block per direction (pointers and element strides). Kernel families register under a
 * name ("cpu" always; "cuda.flash", "cuda.unfused", "cuda.cudnn" when built with CUDA), so a new family
 * plugs in behind te_attn_* without changing callers.
 *
 * Semantics follow packages/core/src/semantics.ts and dropout-rng.ts (FORMAT.md "Semantics").
 */
#ifndef TE_ATTENTION_H
#define TE_ATTENTION_H

#include <stddef.h>
#include <stdint.h>
#include "te_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum te_dtype { TE_F32 = 0, TE_F16 = 1, TE_BF16 = 2 } te_dtype;
typedef enum te_format { TE_BSHD = 0, TE_SBHD = 1, TE_THD = 2 } te_format;
typedef enum te_bias_type { TE_NO_BIAS = 0, TE_PRE_SCALE_BIAS = 1, TE_POST_SCALE_BIAS = 2, TE_ALIBI = 3 } te_bias_type;
typedef enum te_softmax_type { TE_SOFTMAX_VANILLA = 0, TE_SOFTMAX_OFF_BY_ONE = 1, TE_SOFTMAX_LEARNABLE = 2 } te_softmax_type;

/* The call, without tensors. Lengths of entries come from cu_seqlens when given, else sq / skv. */
typedef struct te_attn_desc {
  te_format format;     /* of q, k, v, o and the gradients; the 15 layouts are strides of these */
  te_dtype dtype;       /* storage of q, k, v, o, dO, dq, dk, dv */
  int32_t b, h, hg;     /* batch, query heads, k/v heads (h % hg == 0) */
  int32_t d, dv;        /* head dims of q/k and of v/o */
  int32_t sq, skv;      /* max lengths (lse rows, bias and mask extents) */
  int64_t tq, tkv;      /* thd: rows of the packed q and k/v tensors */
  int32_t causal;       /* causal or padding_causal (with bottom_right: their _bottom_right forms) */
  int32_t bottom_right; /* diagonal of entry at key i + (lk - lq), else i */
  int32_t window_left, window_right; /* -1 = unbounded */
  int32_t arbitrary_mask;            /* mask tensor present (1 = masked out) */
  te_bias_type bias_type;
  te_dtype bias_dtype;
  int32_t bias_b, bias_h; /* bias extents: 1 or b, 1 or h (pre/post_scale_bias) */
  int32_t alibi_per_batch; /* alibi slopes [b, h] (1) or [h] (0) */
  te_softmax_type softmax_type;
  float scale;
  float dropout;          /* probability in [0, 1) */
  uint32_t dropout_threshold; /* dropoutThreshold(p) of dropout-rng.ts, computed by the host */
  uint64_t dropout_seed;
  uint32_t dropout_offset;
  int32_t deterministic;
} te_attn_desc;

/* A strided view of a [batch, seq, head, channel] tensor: element (e, i, hh, c) is at
 * base + e*b + i*s + hh*h + c*c_ (thd: b is 0 and rows start at the entry's token offset).
 * `numel` is the number of elements the buffer holds from `data`, checked against every index. */
typedef struct te_view {
  const void* data;
  int64_t numel;
  int64_t b, s, h, c;
} te_view;

typedef struct te_out_view {
  void* data;
  int64_t numel;
  int64_t b, s, h, c;
} te_out_view;

typedef struct te_attn_fwd_args {
  te_view q, k, v;
  te_out_view o;
  float* lse;             /* [b, h, sq] fp32; rows past a length get -inf */
  int64_t lse_numel;
  /* [b + 1] cumulative lengths (NULL: full lengths) and, for thd, the token offset of each entry
   * (cu_seqlens_*_padded, or NULL to use cu_seqlens). */
  const int32_t* cu_seqlens_q;
  const int32_t* cu_seqlens_kv;
  const int32_t* cu_seqlens_q_padded;
  const int32_t* cu_seqlens_kv_padded;
  /* pre/post_scale_bias: element (e, hh, i, j) at bias + e*bias_sb + hh*bias_sh + i*bias_ss + j. */
  const void* bias;
  int64_t bias_numel, bias_sb, bias_sh, bias_ss;
  /* ALiBi slopes (fp32): [h] or [b, h]; NULL with bias_type TE_ALIBI means TE's default slopes. */
  const float* alibi_slopes;
  /* Arbitrary mask [mb, mh, sq, skv], mb in {1, b}, mh in {1, h}; 1 = masked out. */
  const uint8_t* mask;
  int64_t mask_numel;
  int32_t mask_b, mask_h;
  /* Learnable softmax offset [h] (fp32). */
  const float* softmax_offset;
  /* Host threads (cpu; 0 = all cores), or a cudaStream_t (cuda families). */
  int32_t num_threads;
  void* stream;
  int32_t device;
} te_attn_fwd_args;

typedef struct te_attn_bwd_args {
  te_attn_fwd_args fwd;   /* the forward's inputs; o and lse are read (the forward's outputs) */
  te_view d_o;
  te_out_view dq, dk, dv; /* written only at valid positions: callers pass zeroed buffers */
  void* dbias;            /* contiguous [bias_b, bias_h, sq, skv] of bias_dtype, or NULL */
  int64_t dbias_numel;
  float* d_softmax_offset; /* [h] fp32 for learnable softmax */
} te_attn_bwd_args;

/* Writes why `backend` cannot run desc into reason (empty and TE_OK when it can). */
te_status te_attn_explain(const char* backend, const te_attn_desc* desc, char* reason, size_t reason_size);
te_status te_attn_forward(const char* backend, const te_attn_desc* desc, const te_attn_fwd_args* args);
te_status te_attn_backward(const char* backend, const te_attn_desc* desc, const te_attn_bwd_args* args);

/* The registered backend names, comma separated ("cpu,cuda.flash"). */
const char* te_attn_backends(void);

/* A kernel family: what te_attn_* dispatch to. Families register at library load. */
typedef struct te_attn_family {
  const char* name;
  te_status (*explain)(const te_attn_desc*, char* reason, size_t reason_size);
  te_status (*forward)(const te_attn_desc*, const te_attn_fwd_args*);
  te_status (*backward)(const te_attn_desc*, const te_attn_bwd_args*);
} te_attn_family;

te_status te_attn_register(const te_attn_family* family);

/* Philox-4x32-10 of dropout-rng.ts (for tests that the ports agree). */
void te_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

#ifdef __cplusplus
}
#endif
#endif
