// The plain argument block every CUDA attention kernel of ours takes: device pointers, element
// strides, lengths and the per-element semantics switches (FORMAT.md "Semantics", core/semantics.ts).
// Host and device code both include it; it holds no CUDA types.
#pragma once
#include <stdint.h>

namespace te_cuda {

enum ElemType { kF16 = 0, kBF16 = 1, kF32 = 2 };
enum SoftmaxKind { kVanilla = 0, kOffByOne = 1, kLearnable = 2 };
enum BiasKind { kNoBias = 0, kPreScaleBias = 1, kPostScaleBias = 2 };

// Strides in elements of a [batch, seq, head, dim] view of a tensor; the dim stride must be 1. For thd
// the batch stride is 0 and rows are found through the token offsets.
struct Strides {
  int64_t b, s, h;
};

struct AttentionArgs {
  int elem;  // ElemType of q, k, v, o, dq, dk, dv
  const void* q;
  const void* k;
  const void* v;
  void* o;
  float* lse;  // [b, h, sq] fp32
  Strides q_st, k_st, v_st, o_st;
  int b, h, hkv, d, dv;
  int sq, skv;  // max lengths (lse rows, bias extent, grid)
  // Per-entry lengths: cu_seqlens (b + 1, device) or null for full lengths sq / skv.
  const int* cu_q;
  const int* cu_kv;
  // thd: the first token of entry e is tok_q[e] (cu_seqlens_*_padded, or cu_seqlens itself).
  int thd;
  const int* tok_q;
  const int* tok_kv;
  float scale;
  int causal;
  int window_left, window_right;  // -1 = unbounded
  int bottom_right;               // diagonal of entry at key i + (lk - lq)
  // ALiBi: slope of (e, hh) = alibi[e * alibi_bstride + hh]; null = none.
  const float* alibi;
  int alibi_bstride;
  int bias_kind;
  const void* bias;  // same dtype as q; element (e, hh, i, j) at e*bias_st.b + hh*bias_st.h + i*bias_st.s + j
  Strides bias_st;
  // Arbitrary mask (cuda.unfused only): element (e, hh, i, j) at e*mask_sb + hh*mask_sh + i*skv + j, 1 = masked.
  const unsigned char* mask;
  int64_t mask_sb, mask_sh;
  int softmax;                  // SoftmaxKind
  const float* softmax_offset;  // [h] for kLearnable
  float dropout;
  uint64_t seed;
  uint32_t rng_offset;
  // Backward
  const void* d_o;
  Strides do_st;
  void* dq;
  void* dk;
  void* dv_out;
  Strides dq_st, dk_st, dv_st;
  float* dsoftmax_offset;  // [h] fp32, for kLearnable
  // Bias gradient (cuda.unfused): contiguous [dbias_b, dbias_h, sq, skv] in the dtype of q; null = none.
  void* dbias;
  int dbias_b, dbias_h;
  int deterministic;
  // Scratch for backward (device, caller-sized by te_cuda_bwd_workspace_bytes).
  void* workspace;
};

}  // namespace te_cuda
