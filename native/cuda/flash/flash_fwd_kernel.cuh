// Flash-attention forward (FlashAttention-2 scheme): one CTA per (query block, head, batch entry),
// each warp owns 16 * kMT query rows (kMT row tiles share every K/V fragment it reads); K/V blocks stream through a two-stage cp.async pipeline; S = Q K^T and
// O += P V run on mma.sync with fp32 accumulation; online softmax in log2 units; P never leaves the
// registers (the S accumulator is re-packed as the A operand of P V).
#pragma once
#include "../common/attention_math.cuh"
#include "../common/warp_mma.cuh"

namespace te_cuda {

template <typename T, int D, int DV, int kWarps, int kMT, int kBc>
struct FlashFwdShape {
  static constexpr int kBr = kWarps * 16 * kMT;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kLdK = D + 8;
  static constexpr int kLdV = DV + 8;
  static constexpr int kSmemBytes = (kBr * kLdK + 2 * kBc * kLdK + 2 * kBc * kLdV) * int(sizeof(T));
};

// kExtras: the kernel handles bias, ALiBi and dropout; without it those paths are compiled out, which
// keeps the common case's register budget for the accumulators.
template <typename T, int D, int DV, int kWarps, int kMT, int kBc, bool kExtras>
__global__ void __launch_bounds__(kWarps * 32) flash_fwd_kernel(const AttentionArgs a) {
  using S = FlashFwdShape<T, D, DV, kWarps, kMT, kBc>;
  constexpr int kBr = S::kBr, kThreads = S::kThreads, kLdK = S::kLdK, kLdV = S::kLdV;
  constexpr int kRows = 2 * kMT;  // query rows per thread: g and g + 8 of each row tile
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + kBr * kLdK;
  T* sV = sK + 2 * kBc * kLdK;

  const int e = blockIdx.z, hh = blockIdx.y, hk = hh / (a.h / a.hkv);
  const Entry en = entry_of(a, e);
  // Last query block first: under a causal mask later query blocks see more keys, and starting the
  // longest CTAs first leaves short ones, not long ones, for the last wave.
  const int q0 = (gridDim.x - 1 - blockIdx.x) * kBr;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int warp_row0 = warp * 16 * kMT;
  // Row r of this thread: tile r / 2, upper (g) or lower (g + 8) half r % 2.
  auto row_of = [&](int r) { return q0 + warp_row0 + (r >> 1) * 16 + g + (r & 1) * 8; };
  T* obase = static_cast<T*>(a.o) + e * a.o_st.b + hh * a.o_st.h + en.q_row0 * a.o_st.s;
  float* lse_row = a.lse + (int64_t(e) * a.h + hh) * a.sq;

  // Key blocks that any row of this query block may see.
  int kv_lo = 0, kv_hi = 0;
  if (q0 < en.lq) visible_key_range(a, en, q0, min(q0 + kBr, en.lq), kv_lo, kv_hi);
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

  int lo[kRows], hi[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) allowed_keys(a, en, row_of(r), lo[r], hi[r]);
  const bool plain_logits = !kExtras || (a.bias_kind == kNoBias && a.alibi == nullptr);
  const float scale2 = a.scale * kLog2e;
  const uint32_t threshold = kExtras && a.dropout > 0.f ? dropout_threshold(a.dropout) : 0u;
  const float keep_scale = 1.f / (1.f - a.dropout);

  float acc[kMT][DV / 8][4];
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int n = 0; n < DV / 8; ++n) acc[mt][n][0] = acc[mt][n][1] = acc[mt][n][2] = acc[mt][n][3] = 0.f;
  float m[kRows], l[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) m[r] = -INFINITY, l[r] = 0.f;

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
    float s[kMT][kBc / 8][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int n = 0; n < kBc / 8; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.f;
    warp_gemm_mt<kMT, kBc / 8, D / 16, false, false>(s, sQ, kLdK, warp_row0, 0, sK + stage * kBc * kLdK, kLdK,
                                                      0, 0);

    const bool masked = block_needs_mask(a, en, q0, q0 + kBr, k0, k0 + kBc);
    float mx[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) mx[r] = -INFINITY;
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int n = 0; n < kBc / 8; ++n)
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const int r = mt * 2 + (c >> 1);
          const int j = k0 + n * 8 + 2 * t + (c & 1);
          float x = plain_logits ? s[mt][n][c] * scale2 : logit2<T>(a, en, e, hh, row_of(r), j, s[mt][n][c]);
          if (masked && (j < lo[r] || j >= hi[r])) x = -INFINITY;
          s[mt][n][c] = x;
          mx[r] = fmaxf(mx[r], x);
        }
    float use[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float nm = fmaxf(m[r], mx[r]);
      // A row with every key masked so far keeps max -inf; subtract 0 then so exp2 gives 0, not NaN.
      use[r] = nm == -INFINITY ? 0.f : nm;
      const float corr = fast_exp2(m[r] - use[r]);
      m[r] = nm;
      // Once a row's running max settles (most key blocks of a long row), corr is exactly 1: skipping
      // the multiply saves DV / 4 instructions per row and block.
      if (corr != 1.f) {
        l[r] *= corr;
#pragma unroll
        for (int n = 0; n < DV / 8; ++n) {
          acc[r >> 1][n][(r & 1) * 2] *= corr;
          acc[r >> 1][n][(r & 1) * 2 + 1] *= corr;
        }
      }
    }
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const int r = mt * 2 + (c >> 1);
          s[mt][n][c] = fast_exp2(s[mt][n][c] - use[r]);
          l[r] += s[mt][n][c];
        }
        if (kExtras && threshold) {
          const int j = k0 + n * 8 + 2 * t;
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            const uint32_t keep = dropout_keep_pair(a, threshold, e, hh, row_of(mt * 2 + half), j);
            s[mt][n][2 * half] *= (keep & 1) ? keep_scale : 0.f;
            s[mt][n][2 * half + 1] *= (keep & 2) ? keep_scale : 0.f;
          }
        }
      }
    const T* sVs = sV + stage * kBc * kLdV;
#pragma unroll
    for (int ks = 0; ks < kBc / 16; ++ks) {
      uint32_t pa[kMT][4];
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        pa[mt][0] = Mma<T>::pack(s[mt][2 * ks][0], s[mt][2 * ks][1]);
        pa[mt][1] = Mma<T>::pack(s[mt][2 * ks][2], s[mt][2 * ks][3]);
        pa[mt][2] = Mma<T>::pack(s[mt][2 * ks + 1][0], s[mt][2 * ks + 1][1]);
        pa[mt][3] = Mma<T>::pack(s[mt][2 * ks + 1][2], s[mt][2 * ks + 1][3]);
      }
#pragma unroll
      for (int n = 0; n < DV / 8; n += 2) {
        uint32_t b[4];
        load_b2<true>(b, sVs, kLdV, ks * 16, n * 8);
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
          Mma<T>::run(acc[mt][n], pa[mt], b[0], b[1]);
          Mma<T>::run(acc[mt][n + 1], pa[mt], b[2], b[3]);
        }
      }
    }
    __syncthreads();
  }
  if (nblk == 0) cp_async_wait<0>();

  const float sink = sink_logit2(a, hh);
  const bool write_zero_rows = !a.thd;  // thd has no storage rows past a sequence's end
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    // Fold the sink logit (off_by_one / learnable softmax) into the normaliser.
    float fac = 1.f;
    if (sink != -INFINITY) {
      const float f = fmaxf(m[r], sink);
      fac = exp2f(m[r] - f);
      l[r] = l[r] * fac + exp2f(sink - f);
      m[r] = f;
    }
    const float inv = l[r] > 0.f ? fac / l[r] : 0.f;
    const int i = row_of(r);
    if (i >= a.sq) continue;
    const bool live = i < en.lq;
    if (live || write_zero_rows) {
      T* orow = obase + int64_t(i) * a.o_st.s;
#pragma unroll
      for (int n = 0; n < DV / 8; ++n) {
        const float v0 = live ? acc[r >> 1][n][(r & 1) * 2] * inv : 0.f;
        const float v1 = live ? acc[r >> 1][n][(r & 1) * 2 + 1] * inv : 0.f;
        *reinterpret_cast<uint32_t*>(orow + n * 8 + 2 * t) = Mma<T>::pack(v0, v1);
      }
    }
    if (t == 0) lse_row[i] = (live && l[r] > 0.f) ? (m[r] + log2f(l[r])) * kLn2 : -INFINITY;
  }
}

}  // namespace te_cuda
