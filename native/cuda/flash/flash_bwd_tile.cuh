// The step every backward kernel shares: for one kBr-query x kBc-key tile whose Q, dO, K, V, lse and Dvec
// sit in shared memory, recompute S = Q K^T and dP = dO V^T, then P (dropped) and dS = P (dP - Dvec),
// and store them (16-bit) to shared memory for the products that follow.
// Each warp owns kMT row tiles of 16 queries from tile row pr and kNT column tiles of 8 keys from tile
// column pc; the caller's warp layout covers the tile.
#pragma once
#include "../common/attention_math.cuh"
#include "../common/warp_mma.cuh"

namespace te_cuda {

constexpr int kBwdTile = 64;  // queries and keys per tile of the 64 x 64 backward kernels
constexpr int kBwdWarps = 8;

// Warp layout of the 64 x 64 kernels: warp w owns queries 16 * (w % 4) .. +15, keys 32 * (w / 4) .. +31.
constexpr int kBwdTileMT = 1, kBwdTileNT = 4;
__device__ __forceinline__ int bwd_tile_row0() { return ((threadIdx.x >> 5) & 3) * 16; }
__device__ __forceinline__ int bwd_tile_col0() { return ((threadIdx.x >> 5) >> 2) * 32; }

// kStoreP: also store P (the dK/dV kernel needs it for dV; the dQ kernel only needs dS).
template <typename T, int D, int DV, bool kExtras, bool kStoreP, int kBr, int kBc, int kMT, int kNT>
__device__ __forceinline__ void bwd_tile_p_ds(const AttentionArgs& a, const Entry& en, int e, int hh, int q0, int k0,
                                              int pr, int pc, const T* sQ, int ld_q, const T* sdO, int ld_do,
                                              const T* sK, int ld_k, const T* sV, int ld_v, const float* sLse2,
                                              const float* sDvec, T* sP, T* sdS, int ld_p) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const bool plain_logits = !kExtras || (a.bias_kind == kNoBias && a.alibi == nullptr);
  const float scale2 = a.scale * kLog2e;
  const uint32_t threshold = kExtras && a.dropout > 0.f ? dropout_threshold(a.dropout) : 0u;
  const float keep_scale = 1.f / (1.f - a.dropout);

  float s[kMT][kNT][4], dp[kMT][kNT][4];
#pragma unroll
  for (int m = 0; m < kMT; ++m)
#pragma unroll
    for (int n = 0; n < kNT; ++n)
#pragma unroll
      for (int x = 0; x < 4; ++x) s[m][n][x] = dp[m][n][x] = 0.f;
  warp_gemm_mt<kMT, kNT, D / 16, false, false>(s, sQ, ld_q, pr, 0, sK, ld_k, 0, pc);
  warp_gemm_mt<kMT, kNT, DV / 16, false, false>(dp, sdO, ld_do, pr, 0, sV, ld_v, 0, pc);
  const bool masked = block_needs_mask(a, en, q0, q0 + kBr, k0, k0 + kBc);
#pragma unroll
  for (int rows = 0; rows < 2 * kMT; ++rows) {
    const int m = rows >> 1, half = rows & 1;
    const int r = pr + m * 16 + g + half * 8, i = q0 + r;
    int lo = 0, hi = 0;
    if (masked) allowed_keys(a, en, i, lo, hi);
    const float lse2 = sLse2[r], dvec = sDvec[r];
#pragma unroll
    for (int n = 0; n < kNT; ++n) {
      const int c = pc + n * 8 + 2 * t, j = k0 + c;
      float pv[2], dsv[2];
      uint32_t keep = 3u;
      if (kExtras && threshold) keep = dropout_keep_pair(a, threshold, e, hh, i, j);
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        const float raw = s[m][n][2 * half + u];
        float x = plain_logits ? raw * scale2 : logit2<T>(a, en, e, hh, i, j + u, raw);
        if (masked && (j + u < lo || j + u >= hi)) x = -INFINITY;
        const float p = lse2 == -INFINITY ? 0.f : fast_exp2(x - lse2);
        const bool kept = (keep >> u) & 1u;
        const float ks = kExtras && threshold ? (kept ? keep_scale : 0.f) : 1.f;
        pv[u] = p * ks;
        dsv[u] = p * (dp[m][n][2 * half + u] * ks - dvec);
      }
      if (kStoreP) *reinterpret_cast<uint32_t*>(sP + r * ld_p + c) = Mma<T>::pack(pv[0], pv[1]);
      *reinterpret_cast<uint32_t*>(sdS + r * ld_p + c) = Mma<T>::pack(dsv[0], dsv[1]);
    }
  }
}

}  // namespace te_cuda
