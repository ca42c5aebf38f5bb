// Flash-attention forward (FlashAttention-2 scheme): one CTA per (query block, head, batch entry),
// each warp owns 16 query rows; K/V blocks stream through a two-stage cp.async pipeline; S = Q K^T and
// O += P V run on mma.sync with fp32 accumulation; online softmax in log2 units; P never leaves the
// registers (the S accumulator is re-packed as the A operand of P V).
#pragma once
#include "../common/attention_math.cuh"
#include "../common/warp_mma.cuh"

namespace te_cuda {

template <typename T, int D, int DV, int kWarps, int kBc>
struct FlashFwdShape {
  static constexpr int kBr = kWarps * 16;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kLdK = D + 8;
  static constexpr int kLdV = DV + 8;
  static constexpr int kSmemBytes = (kBr * kLdK + 2 * kBc * kLdK + 2 * kBc * kLdV) * int(sizeof(T));
};

template <typename T, int D, int DV, int kWarps, int kBc>
__global__ void __launch_bounds__(kWarps * 32) flash_fwd_kernel(const AttentionArgs a) {
  using S = FlashFwdShape<T, D, DV, kWarps, kBc>;
  constexpr int kBr = S::kBr, kThreads = S::kThreads, kLdK = S::kLdK, kLdV = S::kLdV;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + kBr * kLdK;
  T* sV = sK + 2 * kBc * kLdK;

  const int e = blockIdx.z, hh = blockIdx.y, hk = hh / (a.h / a.hkv);
  const Entry en = entry_of(a, e);
  const int q0 = blockIdx.x * kBr;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int row_a = q0 + warp * 16 + g, row_b = row_a + 8;  // the two query rows of this thread
  T* obase = static_cast<T*>(a.o) + e * a.o_st.b + hh * a.o_st.h + en.q_row0 * a.o_st.s;
  float* lse_row = a.lse + (int64_t(e) * a.h + hh) * a.sq;

  // Key blocks that any row of this query block may see.
  int kv_lo = 0, kv_hi = 0;
  if (q0 < en.lq) {
    const int q_last = min(q0 + kBr, en.lq) - 1;
    int lo_unused, hi_first;
    allowed_keys(a, en, q0, kv_lo, hi_first);
    allowed_keys(a, en, q_last, lo_unused, kv_hi);
    if (a.window_left == -1) kv_lo = 0;
    kv_lo = max(kv_lo, 0);
    if (kv_hi <= kv_lo) kv_hi = kv_lo;
    (void)lo_unused;
    (void)hi_first;
  }
  const int blk_begin = kv_lo / kBc, blk_end = (kv_hi + kBc - 1) / kBc;
  const int nblk = kv_hi > kv_lo ? blk_end - blk_begin : 0;

  const T* qbase = static_cast<const T*>(a.q) + e * a.q_st.b + hh * a.q_st.h + (en.q_row0 + q0) * a.q_st.s;
  const T* kbase = static_cast<const T*>(a.k) + e * a.k_st.b + hk * a.k_st.h + en.kv_row0 * a.k_st.s;
  const T* vbase = static_cast<const T*>(a.v) + e * a.v_st.b + hk * a.v_st.h + en.kv_row0 * a.v_st.s;

  if (nblk > 0) {
    load_tile_async<kBr, D, kThreads>(sQ, kLdK, qbase, a.q_st.s, en.lq - q0);
    const int k0 = blk_begin * kBc;
    load_tile_async<kBc, D, kThreads>(sK, kLdK, kbase + k0 * a.k_st.s, a.k_st.s, en.lk - k0);
    load_tile_async<kBc, DV, kThreads>(sV, kLdV, vbase + k0 * a.v_st.s, a.v_st.s, en.lk - k0);
    cp_async_commit();
  }

  int lo_a, hi_a, lo_b, hi_b;
  allowed_keys(a, en, row_a, lo_a, hi_a);
  allowed_keys(a, en, row_b, lo_b, hi_b);
  const bool plain_logits = a.bias_kind == kNoBias && a.alibi == nullptr;
  const float scale2 = a.scale * kLog2e;
  const uint32_t threshold = a.dropout > 0.f ? dropout_threshold(a.dropout) : 0u;
  const float keep_scale = 1.f / (1.f - a.dropout);

  float acc[DV / 8][4];
#pragma unroll
  for (int n = 0; n < DV / 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;

  for (int it = 0; it < nblk; ++it) {
    const int stage = it & 1;
    if (it + 1 < nblk) {
      const int k1 = (blk_begin + it + 1) * kBc;
      load_tile_async<kBc, D, kThreads>(sK + (stage ^ 1) * kBc * kLdK, kLdK, kbase + k1 * a.k_st.s, a.k_st.s,
                                        en.lk - k1);
      load_tile_async<kBc, DV, kThreads>(sV + (stage ^ 1) * kBc * kLdV, kLdV, vbase + k1 * a.v_st.s, a.v_st.s,
                                         en.lk - k1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();

    const int k0 = (blk_begin + it) * kBc;
    float s[kBc / 8][4];
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
    warp_gemm<kBc / 8, D / 16, false, false>(s, sQ, kLdK, warp * 16, 0, sK + stage * kBc * kLdK, kLdK, 0, 0);

    const bool masked = block_needs_mask(a, en, q0, q0 + kBr, k0, k0 + kBc);
    float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int j = k0 + n * 8 + 2 * t + (c & 1);
        const bool upper = c < 2;
        const int i = upper ? row_a : row_b;
        float x = plain_logits ? s[n][c] * scale2 : logit2<T>(a, en, e, hh, i, j, s[n][c]);
        if (masked) {
          const int lo = upper ? lo_a : lo_b, hi = upper ? hi_a : hi_b;
          if (j < lo || j >= hi) x = -INFINITY;
        }
        s[n][c] = x;
      }
      mx_a = fmaxf(mx_a, fmaxf(s[n][0], s[n][1]));
      mx_b = fmaxf(mx_b, fmaxf(s[n][2], s[n][3]));
    }
#pragma unroll
    for (int off = 1; off < 4; off <<= 1) {
      mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, off));
      mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, off));
    }
    const float new_a = fmaxf(m_a, mx_a), new_b = fmaxf(m_b, mx_b);
    // A row with every key masked so far keeps max -inf; subtract 0 then so exp2 gives 0, not NaN.
    const float use_a = new_a == -INFINITY ? 0.f : new_a, use_b = new_b == -INFINITY ? 0.f : new_b;
    const float corr_a = exp2f(m_a - use_a), corr_b = exp2f(m_b - use_b);
    m_a = new_a;
    m_b = new_b;
    float sum_a = 0.f, sum_b = 0.f;
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n) {
      s[n][0] = exp2f(s[n][0] - use_a);
      s[n][1] = exp2f(s[n][1] - use_a);
      s[n][2] = exp2f(s[n][2] - use_b);
      s[n][3] = exp2f(s[n][3] - use_b);
      sum_a += s[n][0] + s[n][1];
      sum_b += s[n][2] + s[n][3];
      if (threshold) {
        const int j = k0 + n * 8 + 2 * t;
        const uint32_t ka = dropout_keep_pair(a, threshold, e, hh, row_a, j);
        const uint32_t kb = dropout_keep_pair(a, threshold, e, hh, row_b, j);
        s[n][0] *= (ka & 1) ? keep_scale : 0.f;
        s[n][1] *= (ka & 2) ? keep_scale : 0.f;
        s[n][2] *= (kb & 1) ? keep_scale : 0.f;
        s[n][3] *= (kb & 2) ? keep_scale : 0.f;
      }
    }
    l_a = l_a * corr_a + sum_a;
    l_b = l_b * corr_b + sum_b;
#pragma unroll
    for (int n = 0; n < DV / 8; ++n) {
      acc[n][0] *= corr_a;
      acc[n][1] *= corr_a;
      acc[n][2] *= corr_b;
      acc[n][3] *= corr_b;
    }
    const T* sVs = sV + stage * kBc * kLdV;
#pragma unroll
    for (int ks = 0; ks < kBc / 16; ++ks) {
      uint32_t pa[4];
      pa[0] = Mma<T>::pack(s[2 * ks][0], s[2 * ks][1]);
      pa[1] = Mma<T>::pack(s[2 * ks][2], s[2 * ks][3]);
      pa[2] = Mma<T>::pack(s[2 * ks + 1][0], s[2 * ks + 1][1]);
      pa[3] = Mma<T>::pack(s[2 * ks + 1][2], s[2 * ks + 1][3]);
#pragma unroll
      for (int n = 0; n < DV / 8; n += 2) {
        uint32_t b[4];
        load_b2<true>(b, sVs, kLdV, ks * 16, n * 8);
        Mma<T>::run(acc[n], pa, b[0], b[1]);
        Mma<T>::run(acc[n + 1], pa, b[2], b[3]);
      }
    }
    __syncthreads();
  }
  if (nblk == 0) cp_async_wait<0>();

#pragma unroll
  for (int off = 1; off < 4; off <<= 1) {
    l_a += __shfl_xor_sync(0xffffffffu, l_a, off);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, off);
  }
  // Fold the sink logit (off_by_one / learnable softmax) into the normaliser.
  const float sink = sink_logit2(a, hh);
  float fac_a = 1.f, fac_b = 1.f;
  if (sink != -INFINITY) {
    const float fa = fmaxf(m_a, sink), fb = fmaxf(m_b, sink);
    fac_a = exp2f(m_a - fa);
    fac_b = exp2f(m_b - fb);
    l_a = l_a * fac_a + exp2f(sink - fa);
    l_b = l_b * fac_b + exp2f(sink - fb);
    m_a = fa;
    m_b = fb;
  }
  const float inv_a = l_a > 0.f ? fac_a / l_a : 0.f, inv_b = l_b > 0.f ? fac_b / l_b : 0.f;
  const bool write_zero_rows = !a.thd;  // thd has no storage rows past a sequence's end
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int i = half ? row_b : row_a;
    const float inv = half ? inv_b : inv_a;
    if (i >= a.sq) continue;
    const bool live = i < en.lq;
    if (live || write_zero_rows) {
      T* orow = obase + int64_t(i) * a.o_st.s;
#pragma unroll
      for (int n = 0; n < DV / 8; ++n) {
        const float v0 = live ? acc[n][2 * half] * inv : 0.f, v1 = live ? acc[n][2 * half + 1] * inv : 0.f;
        *reinterpret_cast<uint32_t*>(orow + n * 8 + 2 * t) = Mma<T>::pack(v0, v1);
      }
    }
    if (t == 0) {
      const float l = half ? l_b : l_a, m = half ? m_b : m_a;
      lse_row[i] = (live && l > 0.f) ? (m + log2f(l)) * kLn2 : -INFINITY;
    }
  }
}

}  // namespace te_cuda
