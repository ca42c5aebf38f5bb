// The dK/dV(/dQ) backward kernel with wide tiles: one CTA per (128-key block, kv head, batch entry)
// walks 64-query blocks, the FlashAttention-2 shape for d = 128. Compared with flash_bwd_kernel
// (64 x 64 tiles, two CTAs per SM) each warp's tile is twice as large in both products, so every
// fragment read from shared memory feeds twice the tensor-core instructions, and each query block's
// Q/dO load and dQ atomics serve 128 keys instead of 64. The price: the dK/dV accumulators of 32 keys x
// D/2 per warp take 128 registers at d = 128, so one CTA (8 warps, up to 255 registers) per SM; the
// next query block's Q/dO load while this one computes (two buffers, 171 KB of shared memory at
// d = 128) to cover the load waits the second CTA used to cover.
// Warp roles, 8 warps (w = warp index):
//   S, dP (64 queries x 128 keys): queries 32 * (w % 2) .. +31, keys 32 * (w / 2) .. +31
//   dQ (64 queries x D):           queries 32 * (w % 2) .. +31, columns D/4 * (w / 2) .. +D/4-1
//   dK, dV (128 keys x D):         keys 32 * (w % 4) .. +31,    columns D/2 * (w / 4) .. +D/2-1
// flash_launch.cuh picks this kernel by head dim and shared memory (FlashBwdWideShape::kTakes).
#pragma once
#include "../common/attention_math.cuh"
#include "../common/warp_mma.cuh"
#include "flash_bwd_kernel.cuh"
#include "flash_bwd_tile.cuh"
#include "flash_workspace.h"

namespace te_cuda {

template <typename T, int D, int DV>
struct FlashBwdWideShape {
  static constexpr int kBr = 64, kBc = 128, kWarps = 8, kThreads = kWarps * 32;
  // Row/column tiles (16 / 8 wide) per warp in each product; see the warp roles above.
  static constexpr int kSdpMT = 2, kSdpNT = 4;
  static constexpr int kDqMT = 2, kDqNT = D / 32;
  static constexpr int kKvMT = 2, kDkNT = D / 16, kDvNT = DV / 16;
  // Head dims whose warp tiles come out whole (column tiles in pairs) and whose accumulators fit the
  // registers: d = dv = 64 or 128.
  static constexpr bool kTakes = D == DV && (D == 64 || D == 128);
  static constexpr int kLdK = D + 8, kLdV = DV + 8, kLdP = kBc + 8;
  static constexpr int kQBufElems = kBr * kLdK + kBr * kLdV;
  static constexpr int kSmemBytes =
      (kBc * kLdK + kBc * kLdV + 2 * kQBufElems + 2 * kBr * kLdP) * int(sizeof(T)) + 2 * 2 * kBr * 4;
};

template <typename T, int D, int DV, bool kExtras, bool kAtomicDq>
__global__ void __launch_bounds__(256, 1) flash_bwd_wide_kernel(const AttentionArgs a) {
  using S = FlashBwdWideShape<T, D, DV>;
  static_assert(S::kTakes, "flash_bwd_wide_kernel: unsupported head dims");
  constexpr int kBr = S::kBr, kBc = S::kBc, kThreads = S::kThreads, kLdK = S::kLdK, kLdV = S::kLdV,
                kLdP = S::kLdP;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sK = reinterpret_cast<T*>(smem_raw);
  T* sV = sK + kBc * kLdK;
  T* sQbufs = sV + kBc * kLdV;  // 2 x (Q [kBr][kLdK], dO [kBr][kLdV])
  T* sP = sQbufs + 2 * S::kQBufElems;
  T* sdS = sP + kBr * kLdP;
  float* sStats = reinterpret_cast<float*>(sdS + kBr * kLdP);  // 2 x (lse2 [kBr], Dvec [kBr])

  const int e = blockIdx.z, hk = blockIdx.y, group = a.h / a.hkv;
  const Entry en = entry_of(a, e);
  const int k0 = blockIdx.x * kBc;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int sdp_r = (warp & 1) * 32, sdp_c = (warp >> 1) * 32;
  const int dq_r = sdp_r, dq_c = (warp >> 1) * (D / 4);
  const int kv_r = (warp & 3) * 32, dk_c = (warp >> 2) * (D / 2), dv_c = (warp >> 2) * (DV / 2);

  float dk_acc[S::kKvMT][S::kDkNT][4], dv_acc[S::kKvMT][S::kDvNT][4];
#pragma unroll
  for (int m = 0; m < S::kKvMT; ++m) {
#pragma unroll
    for (int n = 0; n < S::kDkNT; ++n) dk_acc[m][n][0] = dk_acc[m][n][1] = dk_acc[m][n][2] = dk_acc[m][n][3] = 0.f;
#pragma unroll
    for (int n = 0; n < S::kDvNT; ++n) dv_acc[m][n][0] = dv_acc[m][n][1] = dv_acc[m][n][2] = dv_acc[m][n][3] = 0.f;
  }

  if (k0 < en.lk) {
    // Queries that may see a key of this block: i in [q_lo, q_hi).
    const int k_last = min(k0 + kBc, en.lk) - 1;
    int q_lo = 0, q_hi = en.lq;
    if (a.causal) q_lo = max(q_lo, k0 - en.offset);
    if (a.window_right != -1) q_lo = max(q_lo, k0 - en.offset - a.window_right);
    if (a.window_left != -1) q_hi = min(q_hi, k_last - en.offset + a.window_left + 1);
    const int qb_begin = q_lo / kBr, qb_end = q_hi > q_lo ? (q_hi + kBr - 1) / kBr : qb_begin;

    const T* kbase = static_cast<const T*>(a.k) + e * a.k_st.b + hk * a.k_st.h + (en.kv_row0 + k0) * a.k_st.s;
    const T* vbase = static_cast<const T*>(a.v) + e * a.v_st.b + hk * a.v_st.h + (en.kv_row0 + k0) * a.v_st.s;
    load_tile_async<kBc, D, kThreads>(sK, kLdK, kbase, a.k_st.s, en.lk - k0);
    load_tile_async<kBc, DV, kThreads>(sV, kLdV, vbase, a.v_st.s, en.lk - k0);
    cp_async_commit();

    const BwdWorkspace ws = bwd_workspace(a);

    // Work items: (query head of the group, query block), head-major. Item n uses buffer n % 2.
    const int nqb = qb_end - qb_begin, items = group * nqb;
    auto issue = [&](int item) {
      const int buf = item & 1, hh = hk * group + item / nqb, q0 = (qb_begin + item % nqb) * kBr;
      const T* qsrc = static_cast<const T*>(a.q) + e * a.q_st.b + hh * a.q_st.h + (en.q_row0 + q0) * a.q_st.s;
      const T* dosrc =
          static_cast<const T*>(a.d_o) + e * a.do_st.b + hh * a.do_st.h + (en.q_row0 + q0) * a.do_st.s;
      T* bq = sQbufs + buf * S::kQBufElems;
      load_tile_async<kBr, D, kThreads>(bq, kLdK, qsrc, a.q_st.s, en.lq - q0);
      load_tile_async<kBr, DV, kThreads>(bq + kBr * kLdK, kLdV, dosrc, a.do_st.s, en.lq - q0);
      cp_async_commit();
      if (threadIdx.x < kBr) {
        const int i = q0 + threadIdx.x;
        const bool live = i < en.lq;
        const int64_t stat = (int64_t(e) * a.h + hh) * a.sq + i;
        sStats[buf * 2 * kBr + threadIdx.x] = live ? a.lse[stat] * kLog2e : -INFINITY;
        sStats[buf * 2 * kBr + kBr + threadIdx.x] = live ? ws.dvec[stat] : 0.f;
      }
    };
    if (items > 0) issue(0);
    for (int item = 0; item < items; ++item) {
      // The other buffer was last read before the barrier that ended the previous item.
      if (item + 1 < items) {
        issue(item + 1);
        cp_async_wait<1>();
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();
      const int buf = item & 1, hh = hk * group + item / nqb, q0 = (qb_begin + item % nqb) * kBr;
      const T* sQ = sQbufs + buf * S::kQBufElems;
      const T* sdO = sQ + kBr * kLdK;
      const float* sLse = sStats + buf * 2 * kBr;
      const float* sDvec = sLse + kBr;

      // P (dropped) and dS of the 64 x 128 tile to shared memory.
      bwd_tile_p_ds<T, D, DV, kExtras, true, kBr, kBc, S::kSdpMT, S::kSdpNT>(
          a, en, e, hh, q0, k0, sdp_r, sdp_c, sQ, kLdK, sdO, kLdV, sK, kLdK, sV, kLdV, sLse, sDvec, sP, sdS, kLdP);
      __syncthreads();

      // dQ[32 queries x D/4] += dS K * scale, added with fp32 atomics (reductions: nothing waits for
      // them, so they drain while the dK/dV products below run). The deterministic variant leaves dQ
      // to flash_bwd_dq_kernel.
      if (kAtomicDq) {
        float dq[S::kDqMT][S::kDqNT][4];
#pragma unroll
        for (int m = 0; m < S::kDqMT; ++m)
#pragma unroll
          for (int n = 0; n < S::kDqNT; ++n) dq[m][n][0] = dq[m][n][1] = dq[m][n][2] = dq[m][n][3] = 0.f;
        warp_gemm_mt<S::kDqMT, S::kDqNT, kBc / 16, false, true>(dq, sdS, kLdP, dq_r, 0, sK, kLdK, 0, dq_c);
        float* dq_head = ws.dq_acc + (int64_t(e) * a.h + hh) * a.sq * a.d;
#pragma unroll
        for (int rows = 0; rows < 2 * S::kDqMT; ++rows) {
          const int m = rows >> 1, half = rows & 1;
          const int i = q0 + dq_r + m * 16 + g + half * 8;
          if (i >= en.lq) continue;
          float* dst = dq_head + int64_t(i) * a.d + dq_c + 2 * t;
#pragma unroll
          for (int n = 0; n < S::kDqNT; ++n)
            add_pair(dst + n * 8, dq[m][n][2 * half] * a.scale, dq[m][n][2 * half + 1] * a.scale);
        }
      }
      // dV += P^T dO, dK += dS^T Q for 32 keys x D/2.
      warp_gemm_mt<S::kKvMT, S::kDvNT, kBr / 16, true, true>(dv_acc, sP, kLdP, kv_r, 0, sdO, kLdV, 0, dv_c);
      warp_gemm_mt<S::kKvMT, S::kDkNT, kBr / 16, true, true>(dk_acc, sdS, kLdP, kv_r, 0, sQ, kLdK, 0, dk_c);
      __syncthreads();
    }
    cp_async_wait<0>();
  }

  // dK, dV of this warp's 32 keys; rows past the entry's end get zeros (not for thd: no storage there).
  T* dk_base = static_cast<T*>(a.dk) + e * a.dk_st.b + hk * a.dk_st.h + en.kv_row0 * a.dk_st.s;
  T* dv_base = static_cast<T*>(a.dv_out) + e * a.dv_st.b + hk * a.dv_st.h + en.kv_row0 * a.dv_st.s;
#pragma unroll
  for (int rows = 0; rows < 2 * S::kKvMT; ++rows) {
    const int m = rows >> 1, half = rows & 1;
    const int j = k0 + kv_r + m * 16 + g + half * 8;
    if (j >= a.skv || (j >= en.lk && a.thd)) continue;
    const bool live = j < en.lk;
    T* dkr = dk_base + int64_t(j) * a.dk_st.s + dk_c + 2 * t;
    T* dvr = dv_base + int64_t(j) * a.dv_st.s + dv_c + 2 * t;
#pragma unroll
    for (int n = 0; n < S::kDkNT; ++n)
      *reinterpret_cast<uint32_t*>(dkr + n * 8) = Mma<T>::pack(live ? dk_acc[m][n][2 * half] * a.scale : 0.f,
                                                                live ? dk_acc[m][n][2 * half + 1] * a.scale : 0.f);
#pragma unroll
    for (int n = 0; n < S::kDvNT; ++n)
      *reinterpret_cast<uint32_t*>(dvr + n * 8) =
          Mma<T>::pack(live ? dv_acc[m][n][2 * half] : 0.f, live ? dv_acc[m][n][2 * half + 1] : 0.f);
  }
}

}  // namespace te_cuda
