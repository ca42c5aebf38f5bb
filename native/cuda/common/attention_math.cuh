// Per-element attention semantics on the GPU, the same rules as packages/core/src/semantics.ts and
// dropout-rng.ts: allowed key range of a query, ALiBi, bias, softmax sinks and Philox dropout bits.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include "attention_args.h"

namespace te_cuda {

constexpr float kLog2e = 1.4426950408889634f;

// 2^x as one MUFU.EX2 instruction (ex2.approx.ftz: about 2 ulp, results below 2^-126 flushed to 0, and
// 2^-inf = 0). exp2f without --use_fast_math adds range fix-ups around the same instruction; in the
// softmax loops, where every score takes one exp, those extra instructions compete with the
// tensor-core work for issue slots. A probability under 2^-126 is 0 for every use here.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
constexpr float kLn2 = 0.6931471805599453f;

template <typename T>
__device__ __forceinline__ float to_f32(T x);
template <>
__device__ __forceinline__ float to_f32<__half>(__half x) { return __half2float(x); }
template <>
__device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
template <>
__device__ __forceinline__ float to_f32<float>(float x) { return x; }

template <typename T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <>
__device__ __forceinline__ float from_f32<float>(float x) { return x; }

// The geometry of one batch entry: lengths, where its rows start in storage, diagonal offset.
struct Entry {
  int lq, lk;
  int64_t q_row0, kv_row0;  // first storage row (token) of the entry, for thd; 0 otherwise
  int offset;
};

__device__ __forceinline__ Entry entry_of(const AttentionArgs& a, int e) {
  Entry en;
  en.lq = a.cu_q ? a.cu_q[e + 1] - a.cu_q[e] : a.sq;
  en.lk = a.cu_kv ? a.cu_kv[e + 1] - a.cu_kv[e] : a.skv;
  en.q_row0 = a.thd ? a.tok_q[e] : 0;
  en.kv_row0 = a.thd ? a.tok_kv[e] : 0;
  en.offset = a.bottom_right ? en.lk - en.lq : 0;
  return en;
}

// Keys [lo, hi) that query i may attend to (semantics.ts allowedKeyRange).
__device__ __forceinline__ void allowed_keys(const AttentionArgs& a, const Entry& en, int i, int& lo, int& hi) {
  const int diag = i + en.offset;
  lo = 0;
  hi = en.lk;
  if (a.causal) hi = min(hi, diag + 1);
  if (a.window_left != -1) lo = max(lo, diag - a.window_left);
  if (a.window_right != -1) hi = min(hi, diag + a.window_right + 1);
  if (i >= en.lq) hi = lo;
}

// Keys [lo, hi) that any query of the block [q0, q_end) may see (q_end <= en.lq, q0 < q_end): the
// first query's lower bound and the last query's upper bound, since both grow with the query index.
__device__ __forceinline__ void visible_key_range(const AttentionArgs& a, const Entry& en, int q0, int q_end, int& lo,
                                                  int& hi) {
  int unused;
  allowed_keys(a, en, q0, lo, unused);
  allowed_keys(a, en, q_end - 1, unused, hi);
  if (a.window_left == -1) lo = 0;
  lo = max(lo, 0);
  if (hi <= lo) hi = lo;
}

// Whether a query block [q0, q1) and key block [k0, k1) need per-element masking at all.
__device__ __forceinline__ bool block_needs_mask(const AttentionArgs& a, const Entry& en, int q0, int q1, int k0,
                                                 int k1) {
  if (q1 > en.lq || k1 > en.lk) return true;
  if (a.causal && k1 - 1 > q0 + en.offset) return true;
  if (a.window_right != -1 && k1 - 1 > q0 + en.offset + a.window_right) return true;
  if (a.window_left != -1 && k0 < q1 - 1 + en.offset - a.window_left) return true;
  return false;
}

// The logit of (i, j) in log2 units (score * scale [+ bias] [+ alibi]) * log2(e), from the raw q.k.
template <typename T>
__device__ __forceinline__ float logit2(const AttentionArgs& a, const Entry& en, int e, int hh, int i, int j,
                                        float dot) {
  float x;
  if (a.bias_kind == kNoBias) {
    x = dot * a.scale;
  } else {
    const T* bias = static_cast<const T*>(a.bias);
    const float bv = to_f32(bias[e * a.bias_st.b + hh * a.bias_st.h + int64_t(i) * a.bias_st.s + j]);
    x = a.bias_kind == kPreScaleBias ? (dot + bv) * a.scale : dot * a.scale + bv;
  }
  if (a.alibi) x -= a.alibi[e * a.alibi_bstride + hh] * fabsf(float(i - j + en.offset));
  return x * kLog2e;
}

// The sink logit of a row in log2 units (-inf for vanilla softmax).
__device__ __forceinline__ float sink_logit2(const AttentionArgs& a, int hh) {
  if (a.softmax == kOffByOne) return 0.f;
  if (a.softmax == kLearnable) return a.softmax_offset[hh] * kLog2e;
  return -INFINITY;
}

// Philox-4x32-10 exactly as dropout-rng.ts.
__device__ __forceinline__ uint4 philox4x32_10(uint4 c, uint2 k) {
#pragma unroll
  for (int r = 0; r < 10; ++r) {
    const uint32_t hi0 = __umulhi(0xd2511f53u, c.x), lo0 = 0xd2511f53u * c.x;
    const uint32_t hi1 = __umulhi(0xcd9e8d57u, c.z), lo1 = 0xcd9e8d57u * c.z;
    c = make_uint4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k.x += 0x9e3779b9u;
    k.y += 0xbb67ae85u;
  }
  return c;
}

__device__ __forceinline__ uint32_t dropout_threshold(float p) {
  const double t = floor(double(p) * 4294967296.0);
  return t >= 4294967295.0 ? 0xffffffffu : uint32_t(t);
}

// Keep bits of keys j and j + 1 (j even) of query i in entry e, head hh: bit 0 for j, bit 1 for j + 1.
__device__ __forceinline__ uint32_t dropout_keep_pair(const AttentionArgs& a, uint32_t threshold, int e, int hh,
                                                      int i, int j) {
  const uint4 w = philox4x32_10(make_uint4(uint32_t(j >> 2), uint32_t(i), uint32_t(e * a.h + hh), a.rng_offset),
                                make_uint2(uint32_t(a.seed), uint32_t(a.seed >> 32)));
  const uint32_t w0 = (j & 3) == 0 ? w.x : w.z;
  const uint32_t w1 = (j & 3) == 0 ? w.y : w.w;
  return uint32_t(w0 >= threshold) | (uint32_t(w1 >= threshold) << 1);
}

}  // namespace te_cuda
