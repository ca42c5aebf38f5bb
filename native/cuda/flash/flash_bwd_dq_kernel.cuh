// dQ of the deterministic backward: one CTA per (query block, query head, batch entry) walks the key
// blocks its queries can see in ascending order, recomputes P and dS (flash_bwd_tile.cuh) and keeps
// dQ = scale * sum_j dS K in registers; each element is written once by one thread, so the result is
// the same bits on every run (no atomics, fixed summation order). It costs the S and dP products a
// second time; flash_bwd_kernel<..., kAtomicDq = false> computes dK and dV in the same call.
#pragma once
#include "../common/attention_math.cuh"
#include "../common/warp_mma.cuh"
#include "flash_bwd_tile.cuh"
#include "flash_workspace.h"

namespace te_cuda {

template <typename T, int D, int DV>
struct FlashBwdDqShape {
  static constexpr int kBr = kBwdTile, kBc = kBwdTile, kThreads = kBwdWarps * 32;
  static constexpr int kLdK = D + 8, kLdV = DV + 8, kLdP = kBc + 8;
  // K/V of the next key block load while this one computes (two stages) where shared memory allows:
  // 114 KB at d = 128; larger heads use one stage (144 KB at d = 256, under an A100's 163 KB).
  static constexpr int kStages = D <= 128 ? 2 : 1;
  static constexpr int kKvElems = kBc * kLdK + kBc * kLdV;
  static constexpr int kSmemBytes =
      (kBr * kLdK + kBr * kLdV + kStages * kKvElems + kBr * kLdP) * int(sizeof(T)) + 2 * kBr * 4;
};

template <typename T, int D, int DV, bool kExtras>
__global__ void __launch_bounds__(kBwdWarps * 32) flash_bwd_dq_kernel(const AttentionArgs a) {
  using S = FlashBwdDqShape<T, D, DV>;
  constexpr int kBr = S::kBr, kBc = S::kBc, kThreads = S::kThreads, kLdK = S::kLdK, kLdV = S::kLdV,
                kLdP = S::kLdP, kStages = S::kStages;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sdO = sQ + kBr * kLdK;
  T* sKV = sdO + kBr * kLdV;  // kStages x (K [kBc][kLdK], V [kBc][kLdV])
  T* sdS = sKV + kStages * S::kKvElems;
  float* sLse2 = reinterpret_cast<float*>(sdS + kBr * kLdP);
  float* sDvec = sLse2 + kBr;

  const int e = blockIdx.z, hh = blockIdx.y, hk = hh / (a.h / a.hkv);
  const Entry en = entry_of(a, e);
  // Last query block first: under a causal mask later query blocks see more keys, and starting the
  // longest CTAs first leaves short ones, not long ones, for the last wave.
  const int q0 = (gridDim.x - 1 - blockIdx.x) * kBr;
  // Rows past the entry's end: flash_bwd_dq_convert_kernel writes their zeros without reading dq_acc.
  if (q0 >= en.lq) return;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int pr = (warp & 3) * 16, dq_c = (warp >> 2) * (D / 2);
  const BwdWorkspace ws = bwd_workspace(a);

  int kv_lo, kv_hi;
  visible_key_range(a, en, q0, min(q0 + kBr, en.lq), kv_lo, kv_hi);
  const int blk_begin = kv_lo / kBc, blk_end = (kv_hi + kBc - 1) / kBc;
  const int nblk = kv_hi > kv_lo ? blk_end - blk_begin : 0;

  const T* qsrc = static_cast<const T*>(a.q) + e * a.q_st.b + hh * a.q_st.h + (en.q_row0 + q0) * a.q_st.s;
  const T* dosrc = static_cast<const T*>(a.d_o) + e * a.do_st.b + hh * a.do_st.h + (en.q_row0 + q0) * a.do_st.s;
  const T* kbase = static_cast<const T*>(a.k) + e * a.k_st.b + hk * a.k_st.h + en.kv_row0 * a.k_st.s;
  const T* vbase = static_cast<const T*>(a.v) + e * a.v_st.b + hk * a.v_st.h + en.kv_row0 * a.v_st.s;
  auto load_kv = [&](int blk, int stage) {
    const int k0 = (blk_begin + blk) * kBc;
    T* dst = sKV + stage * S::kKvElems;
    load_tile_async<kBc, D, kThreads>(dst, kLdK, kbase + k0 * a.k_st.s, a.k_st.s, en.lk - k0);
    load_tile_async<kBc, DV, kThreads>(dst + kBc * kLdK, kLdV, vbase + k0 * a.v_st.s, a.v_st.s, en.lk - k0);
  };

  load_tile_async<kBr, D, kThreads>(sQ, kLdK, qsrc, a.q_st.s, en.lq - q0);
  load_tile_async<kBr, DV, kThreads>(sdO, kLdV, dosrc, a.do_st.s, en.lq - q0);
  if (kStages == 2 && nblk > 0) load_kv(0, 0);
  cp_async_commit();
  if (threadIdx.x < kBr) {
    const int i = q0 + threadIdx.x;
    const bool live = i < en.lq;
    const int64_t stat = (int64_t(e) * a.h + hh) * a.sq + i;
    sLse2[threadIdx.x] = live ? a.lse[stat] * kLog2e : -INFINITY;
    sDvec[threadIdx.x] = live ? ws.dvec[stat] : 0.f;
  }

  float dq[D / 16][4];
#pragma unroll
  for (int n = 0; n < D / 16; ++n) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;

  for (int it = 0; it < nblk; ++it) {
    const int stage = kStages == 2 ? (it & 1) : 0;
    if (kStages == 1) {
      load_kv(it, 0);
      cp_async_commit();
      cp_async_wait<0>();
    } else if (it + 1 < nblk) {
      load_kv(it + 1, stage ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int k0 = (blk_begin + it) * kBc;
    const T* sK = sKV + stage * S::kKvElems;
    const T* sV = sK + kBc * kLdK;
    bwd_tile_p_ds<T, D, DV, kExtras, false, kBr, kBc, kBwdTileMT, kBwdTileNT>(
        a, en, e, hh, q0, k0, bwd_tile_row0(), bwd_tile_col0(), sQ, kLdK, sdO, kLdV, sK, kLdK, sV, kLdV, sLse2,
                                            sDvec, nullptr, sdS, kLdP);
    __syncthreads();
    warp_gemm<D / 16, kBc / 16, false, true>(dq, sdS, kLdP, pr, 0, sK, kLdK, 0, dq_c);
    // The next iteration's loads and dS overwrite what this one read.
    __syncthreads();
  }
  cp_async_wait<0>();

  float* dq_head = ws.dq_acc + (int64_t(e) * a.h + hh) * a.sq * a.d;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int i = q0 + pr + g + half * 8;
    if (i >= en.lq) continue;
    float* dst = dq_head + int64_t(i) * a.d + dq_c + 2 * t;
#pragma unroll
    for (int n = 0; n < D / 16; ++n)
      *reinterpret_cast<float2*>(dst + n * 8) = make_float2(dq[n][2 * half] * a.scale, dq[n][2 * half + 1] * a.scale);
  }
}

}  // namespace te_cuda
