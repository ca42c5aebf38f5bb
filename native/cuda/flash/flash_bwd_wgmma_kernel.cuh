// The dK/dV(/dQ) backward kernel on Hopper's warpgroup tensor-core instructions (wgmma, sm_90a), for
// d = dv = 128 without bias, ALiBi or dropout (flash_launch.cuh sends everything else to the mma.sync
// kernels). One CTA per (128-key block, kv head, batch entry) walks the 64-query blocks of every query
// head of its GQA group, as flash_bwd_wide_kernel.cuh does; two warpgroups, each owning 64 of the keys:
//   S^T  (64 keys x 64 queries) = K_w Q^T     wgmma m64n64, K and Q K-major in shared memory
//   dP^T (64 x 64)              = V_w dO^T    the same with V and dO
//   P^T = exp2(S^T scale log2e - lse2), dS^T = P^T (dP^T - Dvec), in registers
//   dV (64 keys x 128) += P^T dO              wgmma m64n128, P^T from registers, dO MN-major
//   dK (64 x 128)      += dS^T Q              the same with Q (the tile S^T read K-major)
//   dQ (64 queries x 64 of the d columns, warpgroup w: columns 64 w ..) = dS K, dS^T stored to shared
//      memory as [key][query] (read M-major), K MN-major; added to the fp32 buffer with atomics unless
//      the call is deterministic (then flash_bwd_dq_kernel computes dQ, and this kernel skips it).
// Registers: dK and dV accumulators 64 + 64, S^T/dP^T 32 + 32, dQ 32 per thread; one CTA per SM.
// Layouts and descriptors: ../common/wgmma.cuh; the tile loads: flash_fwd_wgmma_kernel.cuh.
#pragma once
#include <type_traits>
#include "../common/attention_math.cuh"
#include "../common/warp_mma.cuh"
#include "../common/wgmma.cuh"
#include "flash_bwd_kernel.cuh"
#include "flash_fwd_wgmma_kernel.cuh"
#include "flash_workspace.h"

namespace te_cuda {

// kQAhead: query blocks whose Q/dO load is in flight while one computes (1 or 2; kQAhead + 1 buffers).
template <typename T, int D, int DV, int kQAhead>
struct FlashBwdWgmmaShape {
  static constexpr int kWarpgroups = 2, kThreads = 128 * kWarpgroups;
  static constexpr int kBc = 64 * kWarpgroups, kBr = 64;
  static constexpr bool kTakes = D == 128 && DV == 128;
  static constexpr int kKBytes = kBc * D * 2, kVBytes = kBc * DV * 2;
  static constexpr int kQBytes = kBr * D * 2, kQBufBytes = kQBytes + kBr * DV * 2;  // Q then dO
  static constexpr int kdSBytes = kBc * kBr * 2;
  static constexpr int kQBufs = kQAhead + 1;
  static constexpr int kStatsBytes = kQBufs * 2 * kBr * 4;  // per buffer: lse2, Dvec
  // 147 KB (kQAhead = 1) or 179 KB (2) at d = 128.
  static constexpr int kSmemBytes = kKBytes + kVBytes + kQBufs * kQBufBytes + kdSBytes + kStatsBytes + 1024;
};

// kKeyBlocksSlowest: the grid is (kv head, batch entry, key block) instead of (key block, kv head,
// batch entry), so every CTA of key block 0 starts before any of key block 1: under a causal mask the
// longest CTAs first (flash_launch.cuh lpt_order picks it; PERF_NOTES.md v9).
// kLean (the default; TE_FLASH_BWD=wgmma_classic turns it off; PERF_NOTES.md v11): as the forward's
// kLean, tile loads by load_tile_sw128_rows, descriptors as bases plus constant steps, the mask code
// only in masked blocks.
template <typename T, int D, int DV, bool kAtomicDq, int kQAhead, bool kKeyBlocksSlowest, bool kLean = false>
__global__ void __launch_bounds__(256, 1) flash_bwd_wgmma_kernel(const AttentionArgs a) {
  using S = FlashBwdWgmmaShape<T, D, DV, kQAhead>;
  static_assert(S::kTakes, "flash_bwd_wgmma_kernel: d = dv = 128 only");
#if TE_WGMMA_ENABLED
  constexpr int kBr = S::kBr, kBc = S::kBc, kThreads = S::kThreads;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* sK = smem_raw + ((1024 - (smem_addr(smem_raw) & 1023)) & 1023);
  unsigned char* sV = sK + S::kKBytes;
  unsigned char* sQbufs = sV + S::kVBytes;  // kQBufs x (Q [kBr][D], dO [kBr][DV]), swizzled panels
  unsigned char* sdS = sQbufs + S::kQBufs * S::kQBufBytes;  // dS^T [kBc keys][kBr queries], one panel
  float* sStats = reinterpret_cast<float*>(sdS + S::kdSBytes);

  const int e = kKeyBlocksSlowest ? blockIdx.y : blockIdx.z, hk = kKeyBlocksSlowest ? blockIdx.x : blockIdx.y;
  const int group = a.h / a.hkv;
  const Entry en = entry_of(a, e);
  const int k0 = (kKeyBlocksSlowest ? blockIdx.z : blockIdx.x) * kBc;
  const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, g = lane >> 2,
            t = lane & 3;
  // Accumulator rows of this thread (S^T, dP^T, dK, dV): keys key_row(0) and key_row(0) + 8 of the block.
  auto key_row = [&](int h) { return wg * 64 + warp * 16 + g + h * 8; };

  float dk[64], dv[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) dk[i] = dv[i] = 0.f;

  if (k0 < en.lk) {
    const int k_last = min(k0 + kBc, en.lk) - 1;
    int q_lo = 0, q_hi = en.lq;
    if (a.causal) q_lo = max(q_lo, k0 - en.offset);
    if (a.window_right != -1) q_lo = max(q_lo, k0 - en.offset - a.window_right);
    if (a.window_left != -1) q_hi = min(q_hi, k_last - en.offset + a.window_left + 1);
    const int qb_begin = q_lo / kBr, qb_end = q_hi > q_lo ? (q_hi + kBr - 1) / kBr : qb_begin;

    const T* kbase = static_cast<const T*>(a.k) + e * a.k_st.b + hk * a.k_st.h + (en.kv_row0 + k0) * a.k_st.s;
    const T* vbase = static_cast<const T*>(a.v) + e * a.v_st.b + hk * a.v_st.h + (en.kv_row0 + k0) * a.v_st.s;
    auto load_tile = [&](auto rows, auto cols, unsigned char* dst, const T* src, int64_t row_stride, int valid_rows) {
      constexpr int kRows = decltype(rows)::value, kCols = decltype(cols)::value;
      if constexpr (kLean) load_tile_sw128_rows<kRows, kCols, kThreads>(smem_addr(dst), src, row_stride, valid_rows);
      else load_tile_sw128<kRows, kCols, kThreads>(dst, src, row_stride, valid_rows);
    };
    using KRows = std::integral_constant<int, kBc>;
    using QRows = std::integral_constant<int, kBr>;
    using DCols = std::integral_constant<int, D>;
    using DvCols = std::integral_constant<int, DV>;
    load_tile(KRows{}, DCols{}, sK, kbase, a.k_st.s, en.lk - k0);
    load_tile(KRows{}, DvCols{}, sV, vbase, a.v_st.s, en.lk - k0);

    const BwdWorkspace ws = bwd_workspace(a);
    const int nqb = qb_end - qb_begin, items = group * nqb;
    // Work item n (query head of the group, query block; head-major) uses buffer n % kQBufs.
    auto issue = [&](int item) {
      if (item >= items) return;
      const int buf = item % S::kQBufs, hh = hk * group + item / nqb, q0 = (qb_begin + item % nqb) * kBr;
      const T* qsrc = static_cast<const T*>(a.q) + e * a.q_st.b + hh * a.q_st.h + (en.q_row0 + q0) * a.q_st.s;
      const T* dosrc =
          static_cast<const T*>(a.d_o) + e * a.do_st.b + hh * a.do_st.h + (en.q_row0 + q0) * a.do_st.s;
      unsigned char* bq = sQbufs + buf * S::kQBufBytes;
      load_tile(QRows{}, DCols{}, bq, qsrc, a.q_st.s, en.lq - q0);
      load_tile(QRows{}, DvCols{}, bq + S::kQBytes, dosrc, a.do_st.s, en.lq - q0);
      if (threadIdx.x < kBr) {
        const int i = q0 + threadIdx.x;
        const bool live = i < en.lq;
        const int64_t stat = (int64_t(e) * a.h + hh) * a.sq + i;
        sStats[buf * 2 * kBr + threadIdx.x] = live ? a.lse[stat] * kLog2e : -INFINITY;
        sStats[buf * 2 * kBr + kBr + threadIdx.x] = live ? ws.dvec[stat] : 0.f;
      }
    };
    // One cp.async group per item (the first also holds K and V), committed even when empty, so that
    // "all but the newest kQAhead - 1 groups" always means up to this item.
    issue(0);
    cp_async_commit();
    if (kQAhead == 2) {
      issue(1);
      cp_async_commit();
    }

    const float scale2 = a.scale * kLog2e;
    const uint32_t k_addr = smem_addr(sK), v_addr = smem_addr(sV), ds_addr = smem_addr(sdS);
    // kLean: the bases of every descriptor (the K/V halves of this warpgroup K-major, dS^T and K for dQ).
    const uint64_t k_desc = sw128_desc(k_addr + wg * 64 * 128, 16, 1024),
                   v_desc = sw128_desc(v_addr + wg * 64 * 128, 16, 1024),
                   ds_desc = sw128_desc(ds_addr, kBc * 128, 1024),
                   kq_desc = sw128_desc(k_addr + wg * kBc * 128, kBc * 128, 1024);
    for (int item = 0; item < items; ++item) {
      cp_async_wait<kQAhead - 1>();
      fence_proxy_async();
      // This item's Q/dO/stats are visible, and every thread finished item - 1 (its wgmma waited), so
      // that item's buffer and dS^T are free.
      __syncthreads();
      issue(item + kQAhead);
      cp_async_commit();
      const int buf = item % S::kQBufs, hh = hk * group + item / nqb, q0 = (qb_begin + item % nqb) * kBr;
      const uint32_t q_addr = smem_addr(sQbufs + buf * S::kQBufBytes), do_addr = q_addr + S::kQBytes;
      const float* sLse2 = sStats + buf * 2 * kBr;
      const float* sDvec = sLse2 + kBr;

      const uint64_t q_desc = sw128_desc(q_addr, 16, 1024), do_desc = sw128_desc(do_addr, 16, 1024);
      float s[32], dp[32];
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        const int panel = ks / 4, col = (ks % 4) * 32;
        if constexpr (kLean)
          Wgmma<T>::template ss_n64<0, 0>(s, sw128_desc_plus(k_desc, panel * kBc * 128 + col),
                                          sw128_desc_plus(q_desc, panel * kBr * 128 + col), ks > 0);
        else
          Wgmma<T>::template ss_n64<0, 0>(s, sw128_desc(k_addr + panel * kBc * 128 + wg * 64 * 128 + col, 16, 1024),
                                          sw128_desc(q_addr + panel * kBr * 128 + col, 16, 1024), ks > 0);
      }
#pragma unroll
      for (int ks = 0; ks < DV / 16; ++ks) {
        const int panel = ks / 4, col = (ks % 4) * 32;
        if constexpr (kLean)
          Wgmma<T>::template ss_n64<0, 0>(dp, sw128_desc_plus(v_desc, panel * kBc * 128 + col),
                                           sw128_desc_plus(do_desc, panel * kBr * 128 + col), ks > 0);
        else
          Wgmma<T>::template ss_n64<0, 0>(dp, sw128_desc(v_addr + panel * kBc * 128 + wg * 64 * 128 + col, 16, 1024),
                                           sw128_desc(do_addr + panel * kBr * 128 + col, 16, 1024), ks > 0);
      }
      wgmma_commit();
      wgmma_wait<0>();
      wgmma_fence_operands(s);
      wgmma_fence_operands(dp);

      // s[4 n + c]: key k0 + key_row(c >> 1), query q0 + 8 n + 2 t + (c & 1).
      const Entry& ent = en;
      const bool masked = block_needs_mask(a, ent, q0, q0 + kBr, k0, k0 + kBc);
      // kMasked (a compile-time bool): the per-element mask; the lean kernel compiles both forms and
      // branches once per block, the other one tests `masked` inside.
      auto probabilities = [&](auto masked_c) {
        constexpr bool kMasked = decltype(masked_c)::value;
#pragma unroll
        for (int n = 0; n < kBr / 8; ++n)
#pragma unroll
          for (int u = 0; u < 2; ++u) {
            const int col = n * 8 + 2 * t + u, i = q0 + col;
            const float lse2 = sLse2[col], dvec = sDvec[col];
            int lo = 0, hi = 0;
            if (kMasked && (kLean || masked)) allowed_keys(a, ent, i, lo, hi);
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              const int idx = 4 * n + 2 * h + u, j = k0 + key_row(h);
              float x = s[idx] * scale2;
              if (kMasked && (kLean || masked) && (j < lo || j >= hi)) x = -INFINITY;
              const float p = lse2 == -INFINITY ? 0.f : fast_exp2(x - lse2);
              s[idx] = p;
              dp[idx] = p * (dp[idx] - dvec);
            }
          }
      };
      if (!kLean) probabilities(std::true_type{});
      else if (masked) probabilities(std::true_type{});
      else probabilities(std::false_type{});
      uint32_t pa[kBr / 16][4], dsa[kBr / 16][4];
#pragma unroll
      for (int ks = 0; ks < kBr / 16; ++ks) {
        pa[ks][0] = Mma<T>::pack(s[8 * ks + 0], s[8 * ks + 1]);
        pa[ks][1] = Mma<T>::pack(s[8 * ks + 2], s[8 * ks + 3]);
        pa[ks][2] = Mma<T>::pack(s[8 * ks + 4], s[8 * ks + 5]);
        pa[ks][3] = Mma<T>::pack(s[8 * ks + 6], s[8 * ks + 7]);
        dsa[ks][0] = Mma<T>::pack(dp[8 * ks + 0], dp[8 * ks + 1]);
        dsa[ks][1] = Mma<T>::pack(dp[8 * ks + 2], dp[8 * ks + 3]);
        dsa[ks][2] = Mma<T>::pack(dp[8 * ks + 4], dp[8 * ks + 5]);
        dsa[ks][3] = Mma<T>::pack(dp[8 * ks + 6], dp[8 * ks + 7]);
      }
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < kBr / 16; ++ks)
        Wgmma<T>::rs_mn(dv, pa[ks], kLean ? sw128_desc_plus(sw128_desc(do_addr, kBr * 128, 1024), ks * 16 * 128)
                                          : sw128_desc(do_addr + ks * 16 * 128, kBr * 128, 1024));
#pragma unroll
      for (int ks = 0; ks < kBr / 16; ++ks)
        Wgmma<T>::rs_mn(dk, dsa[ks], kLean ? sw128_desc_plus(sw128_desc(q_addr, kBr * 128, 1024), ks * 16 * 128)
                                           : sw128_desc(q_addr + ks * 16 * 128, kBr * 128, 1024));
      wgmma_commit();

      if (kAtomicDq) {
        // dS^T to shared memory, [key][query] in one swizzled panel: each packed pair is one 4-byte store.
#pragma unroll
        for (int ks = 0; ks < kBr / 16; ++ks)
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            const int r = key_row(q & 1), c = ks * 16 + (q >> 1) * 8 + 2 * t;
            *reinterpret_cast<uint32_t*>(sdS + sw128_offset(r, c)) = dsa[ks][q];
          }
        fence_proxy_async();
        __syncthreads();
        float dq[32];
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < kBc / 16; ++ks)
          if constexpr (kLean)
            Wgmma<T>::template ss_n64<1, 1>(dq, sw128_desc_plus(ds_desc, ks * 16 * 128),
                                            sw128_desc_plus(kq_desc, ks * 16 * 128), ks > 0);
          else
            Wgmma<T>::template ss_n64<1, 1>(dq, sw128_desc(ds_addr + ks * 16 * 128, kBc * 128, 1024),
                                            sw128_desc(k_addr + wg * kBc * 128 + ks * 16 * 128, kBc * 128, 1024),
                                            ks > 0);
        wgmma_commit();
        wgmma_wait<0>();
        wgmma_fence_operands(dq);
        wgmma_fence_operands(dk);
        wgmma_fence_operands(dv);
        wgmma_keep_operands(pa);
        wgmma_keep_operands(dsa);
        // dq[4 n + c]: query q0 + warp * 16 + g + 8 (c >> 1), column 64 wg + 8 n + 2 t + (c & 1). Lanes
        // t and t ^ 1 trade pairs so that each adds four adjacent columns of one row (even t: row g,
        // odd t: row g + 8) with one 16-byte vector atomic, half the atomics of pairs.
        float* dq_head = ws.dq_acc + (int64_t(e) * a.h + hh) * a.sq * a.d;
        const bool odd = t & 1;
        const int i = q0 + warp * 16 + g + (odd ? 8 : 0);
        float* dst = dq_head + int64_t(i) * a.d + wg * 64 + 2 * (t & ~1);
#pragma unroll
        for (int n = 0; n < 8; ++n) {
          const float give0 = odd ? dq[4 * n] : dq[4 * n + 2], give1 = odd ? dq[4 * n + 1] : dq[4 * n + 3];
          const float got0 = __shfl_xor_sync(0xffffffffu, give0, 1), got1 = __shfl_xor_sync(0xffffffffu, give1, 1);
          const float4 v = odd ? make_float4(got0, got1, dq[4 * n + 2], dq[4 * n + 3])
                               : make_float4(dq[4 * n], dq[4 * n + 1], got0, got1);
          if (i < en.lq)
            atomicAdd(reinterpret_cast<float4*>(dst + n * 8),
                      make_float4(v.x * a.scale, v.y * a.scale, v.z * a.scale, v.w * a.scale));
        }
      } else {
        wgmma_wait<0>();
        wgmma_fence_operands(dk);
        wgmma_fence_operands(dv);
        wgmma_keep_operands(pa);
        wgmma_keep_operands(dsa);
      }
    }
    cp_async_wait<0>();
  }

  // dK, dV of this thread's keys; rows past the entry's end get zeros (not for thd: no storage there).
  T* dk_base = static_cast<T*>(a.dk) + e * a.dk_st.b + hk * a.dk_st.h + en.kv_row0 * a.dk_st.s;
  T* dv_base = static_cast<T*>(a.dv_out) + e * a.dv_st.b + hk * a.dv_st.h + en.kv_row0 * a.dv_st.s;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int j = k0 + key_row(h);
    if (j >= a.skv || (j >= en.lk && a.thd)) continue;
    const bool live = j < en.lk;
    T* dkr = dk_base + int64_t(j) * a.dk_st.s + 2 * t;
    T* dvr = dv_base + int64_t(j) * a.dv_st.s + 2 * t;
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
      *reinterpret_cast<uint32_t*>(dkr + n * 8) = Mma<T>::pack(live ? dk[4 * n + 2 * h] * a.scale : 0.f,
                                                                live ? dk[4 * n + 2 * h + 1] * a.scale : 0.f);
#pragma unroll
    for (int n = 0; n < DV / 8; ++n)
      *reinterpret_cast<uint32_t*>(dvr + n * 8) =
          Mma<T>::pack(live ? dv[4 * n + 2 * h] : 0.f, live ? dv[4 * n + 2 * h + 1] : 0.f);
  }
#endif
}

}  // namespace te_cuda
