// Flash-attention backward with recomputation (FlashAttention-2 scheme).
//   1. flash_bwd_dot_kernel: Dvec[e, h, i] = sum_d dO * O (and the learnable-softmax offset gradient).
//   2. flash_bwd_kernel: one CTA per (key block, kv head, batch entry) loops over the query heads of its
//      GQA group and the query blocks that can see its keys; recomputes P from lse, accumulates dK and
//      dV in registers (so GQA needs no atomics and no replicated K/V), and adds dQ = dS K * scale into
//      an fp32 buffer with atomics, unless the call asks for a deterministic backward: then
//      flash_bwd_dq_kernel (flash_bwd_dq_kernel.cuh) computes dQ in a second pass without atomics.
//   3. flash_bwd_dq_convert_kernel: the fp32 dQ buffer to q's dtype and layout.
// 8 warps; every product reads both operands from shared memory (ldmatrix / ldmatrix.trans).
#pragma once
#include "../common/attention_math.cuh"
#include "../common/warp_mma.cuh"
#include "flash_bwd_tile.cuh"
#include "flash_workspace.h"

namespace te_cuda {

template <typename T, int DV>
__global__ void flash_bwd_dot_kernel(const AttentionArgs a) {
  // One warp per row (e, hh, i).
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= int64_t(a.b) * a.h * a.sq) return;
  const int i = int(row % a.sq), hh = int((row / a.sq) % a.h), e = int(row / (int64_t(a.sq) * a.h));
  const Entry en = entry_of(a, e);
  float dot = 0.f;
  if (i < en.lq) {
    const T* o = static_cast<const T*>(a.o) + e * a.o_st.b + hh * a.o_st.h + (en.q_row0 + i) * a.o_st.s;
    const T* d_o = static_cast<const T*>(a.d_o) + e * a.do_st.b + hh * a.do_st.h + (en.q_row0 + i) * a.do_st.s;
    for (int c = lane; c < DV; c += 32) dot += to_f32(o[c]) * to_f32(d_o[c]);
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off);
  if (lane == 0) {
    bwd_workspace(a).dvec[row] = dot;
    if (a.softmax == kLearnable && i < en.lq) {
      // d(offset_h) = sum_i P_sink(i) * (0 - Dvec_i), P_sink = exp(offset - lse).
      const float lse = a.lse[row];
      const float p_sink = lse == -INFINITY ? 0.f : expf(a.softmax_offset[hh] - lse);
      atomicAdd(a.dsoftmax_offset + hh, -p_sink * dot);
    }
  }
}

// dst[0] += x, dst[1] += y (8-byte aligned): one vector atomic on sm_90+, which halves the atomic
// traffic to L2 that the dQ accumulation is bound by; two scalar atomics before.
__device__ __forceinline__ void add_pair(float* dst, float x, float y) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  atomicAdd(reinterpret_cast<float2*>(dst), make_float2(x, y));
#else
  atomicAdd(dst, x);
  atomicAdd(dst + 1, y);
#endif
}

template <typename T, int D, int DV>
struct FlashBwdShape {
  static constexpr int kBr = kBwdTile, kBc = kBwdTile, kWarps = kBwdWarps, kThreads = kBwdWarps * 32;
  static constexpr int kLdK = D + 8, kLdV = DV + 8, kLdP = kBc + 8;
  // d <= 128: two CTAs per SM (16 warps; registers capped at 128, 88 KB shared memory at d = 128), so
  // one CTA computes while the other waits at a barrier or on its loads. That needs one Q/dO buffer;
  // kQBufs = 2 (the next query block prefetched, 124 KB, one CTA per SM) measured slower on the H100
  // (PERF_NOTES.md, v1 -> v2). Larger heads keep one CTA per SM (registers) and one buffer (163 KB).
  static constexpr int kCtasPerSm = D <= 128 ? 2 : 1;
  static constexpr int kQBufs = 1;
  static constexpr int kQBufElems = kBr * kLdK + kBr * kLdV;
  static constexpr int kSmemBytes =
      (kBc * kLdK + kBc * kLdV + kQBufs * kQBufElems + 2 * kBr * kLdP) * int(sizeof(T)) + kQBufs * 2 * kBr * 4;
};

// kExtras as in the forward kernel: bias, ALiBi and dropout paths compiled in or out.
// kAtomicDq: add dQ here with atomics (fast, order of additions varies run to run); without it this
// kernel computes dK and dV only, each CTA summing its query blocks in a fixed order.
template <typename T, int D, int DV, bool kExtras, bool kAtomicDq>
__global__ void __launch_bounds__(kBwdWarps * 32, FlashBwdShape<T, D, DV>::kCtasPerSm) flash_bwd_kernel(const AttentionArgs a) {
  using S = FlashBwdShape<T, D, DV>;
  constexpr int kBr = S::kBr, kBc = S::kBc, kThreads = S::kThreads, kLdK = S::kLdK, kLdV = S::kLdV,
                kLdP = S::kLdP;
  constexpr int kQBufs = S::kQBufs;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sK = reinterpret_cast<T*>(smem_raw);
  T* sV = sK + kBc * kLdK;
  T* sQbufs = sV + kBc * kLdV;  // kQBufs x (Q [kBr][kLdK], dO [kBr][kLdV])
  T* sP = sQbufs + kQBufs * S::kQBufElems;
  T* sdS = sP + kBr * kLdP;
  float* sStats = reinterpret_cast<float*>(sdS + kBr * kLdP);  // kQBufs x (lse2 [kBr], Dvec [kBr])

  const int e = blockIdx.z, hk = blockIdx.y, group = a.h / a.hkv;
  const Entry en = entry_of(a, e);
  const int k0 = blockIdx.x * kBc;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  T* dk_base = static_cast<T*>(a.dk) + e * a.dk_st.b + hk * a.dk_st.h + en.kv_row0 * a.dk_st.s;
  T* dv_base = static_cast<T*>(a.dv_out) + e * a.dv_st.b + hk * a.dv_st.h + en.kv_row0 * a.dv_st.s;

  // Phase roles of this warp: dQ (16 queries x D/2), dK/dV (16 keys x D/2); S/dP: flash_bwd_tile.cuh.
  const int pr = (warp & 3) * 16;
  const int dq_c = (warp >> 2) * (D / 2);
  const int kr = (warp & 3) * 16, dk_c = (warp >> 2) * (D / 2), dv_c = (warp >> 2) * (DV / 2);

  float dk_acc[D / 16][4], dv_acc[DV / 16][4];
#pragma unroll
  for (int n = 0; n < D / 16; ++n) dk_acc[n][0] = dk_acc[n][1] = dk_acc[n][2] = dk_acc[n][3] = 0.f;
#pragma unroll
  for (int n = 0; n < DV / 16; ++n) dv_acc[n][0] = dv_acc[n][1] = dv_acc[n][2] = dv_acc[n][3] = 0.f;

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

    // Work items: (query head of the group, query block), head-major.
    const int nqb = qb_end - qb_begin, items = group * nqb;
    auto issue = [&](int item, int buf) {
      const int hh = hk * group + item / nqb, q0 = (qb_begin + item % nqb) * kBr;
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
    if (kQBufs == 2 && items > 0) issue(0, 0);
    for (int item = 0; item < items; ++item) {
      const int buf = kQBufs == 2 ? (item & 1) : 0;
      if (kQBufs == 1) {
        issue(item, 0);
        cp_async_wait<0>();
      } else if (item + 1 < items) {
        issue(item + 1, buf ^ 1);
        cp_async_wait<1>();
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();
      const int hh = hk * group + item / nqb, q0 = (qb_begin + item % nqb) * kBr;
      const T* sQ = sQbufs + buf * S::kQBufElems;
      const T* sdO = sQ + kBr * kLdK;
      const float* sLse = sStats + buf * 2 * kBr;
      const float* sDvec = sLse + kBr;
      float* dq_head = ws.dq_acc + (int64_t(e) * a.h + hh) * a.sq * a.d;
      {
        // Phase 1: P (dropped) and dS of the tile to shared memory.
        bwd_tile_p_ds<T, D, DV, kExtras, true, kBr, kBc, kBwdTileMT, kBwdTileNT>(
        a, en, e, hh, q0, k0, bwd_tile_row0(), bwd_tile_col0(), sQ, kLdK, sdO, kLdV, sK, kLdK, sV, kLdV, sLse,
                                               sDvec, sP, sdS, kLdP);
        __syncthreads();

        // Phase 2: dQ[16 queries x D/2] += dS K * scale (fp32 atomics); the deterministic variant leaves
        // dQ to flash_bwd_dq_kernel.
        if (kAtomicDq) {
          float dq[D / 16][4];
#pragma unroll
          for (int n = 0; n < D / 16; ++n) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;
          warp_gemm<D / 16, kBc / 16, false, true>(dq, sdS, kLdP, pr, 0, sK, kLdK, 0, dq_c);
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            const int i = q0 + pr + g + half * 8;
            if (i >= en.lq) continue;
            float* dst = dq_head + int64_t(i) * a.d + dq_c + 2 * t;
#pragma unroll
            for (int n = 0; n < D / 16; ++n) add_pair(dst + n * 8, dq[n][2 * half] * a.scale, dq[n][2 * half + 1] * a.scale);
          }
        }
        // Phase 3: dV += P^T dO, dK += dS^T Q for 16 keys x D/2.
        warp_gemm<DV / 16, kBr / 16, true, true>(dv_acc, sP, kLdP, kr, 0, sdO, kLdV, 0, dv_c);
        warp_gemm<D / 16, kBr / 16, true, true>(dk_acc, sdS, kLdP, kr, 0, sQ, kLdK, 0, dk_c);
        __syncthreads();
      }
    }
    cp_async_wait<0>();
  }

  // dK, dV of this warp's 16 keys; rows past the entry's end get zeros (not for thd: no storage there).
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int j = k0 + kr + g + half * 8;
    if (j >= a.skv || (j >= en.lk && a.thd)) continue;
    const bool live = j < en.lk;
    T* dkr = dk_base + int64_t(j) * a.dk_st.s + dk_c + 2 * t;
    T* dvr = dv_base + int64_t(j) * a.dv_st.s + dv_c + 2 * t;
#pragma unroll
    for (int n = 0; n < D / 16; ++n)
      *reinterpret_cast<uint32_t*>(dkr + n * 8) = Mma<T>::pack(live ? dk_acc[n][2 * half] * a.scale : 0.f,
                                                                live ? dk_acc[n][2 * half + 1] * a.scale : 0.f);
#pragma unroll
    for (int n = 0; n < DV / 16; ++n)
      *reinterpret_cast<uint32_t*>(dvr + n * 8) =
          Mma<T>::pack(live ? dv_acc[n][2 * half] : 0.f, live ? dv_acc[n][2 * half + 1] : 0.f);
  }
}

template <typename T>
__global__ void flash_bwd_dq_convert_kernel(const AttentionArgs a) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t total = int64_t(a.b) * a.h * a.sq * a.d;
  if (idx >= total) return;
  const int c = int(idx % a.d);
  const int64_t row = idx / a.d;
  const int i = int(row % a.sq), hh = int((row / a.sq) % a.h), e = int(row / (int64_t(a.sq) * a.h));
  const Entry en = entry_of(a, e);
  if (i >= en.lq && a.thd) return;
  T* dst = static_cast<T*>(a.dq) + e * a.dq_st.b + hh * a.dq_st.h + (en.q_row0 + i) * a.dq_st.s + c;
  *dst = from_f32<T>(i < en.lq ? bwd_workspace(a).dq_acc[idx] : 0.f);
}

}  // namespace te_cuda
