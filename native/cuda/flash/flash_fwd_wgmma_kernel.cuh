// Flash-attention forward on Hopper's warpgroup tensor-core instructions (wgmma, sm_90a), for the
// common case: d = dv = 128, no bias, ALiBi or dropout (flash_launch.cuh sends everything else to
// flash_fwd_kernel.cuh). Same scheme as the mma.sync forward: one CTA per (query block, head, batch
// entry), K/V blocks through a three-stage cp.async pipeline, online softmax in log2 units, P kept in
// registers; what differs is the product: each warpgroup (4 warps) owns 64 query rows and issues
//   S (64 x 128 keys) = Q K^T   as 8 wgmma m64n128k16, both operands read by the tensor cores straight
//                                from 128B-swizzled shared memory (no ldmatrix, no register copies),
//   O (64 x 128) += P V        as 8 wgmma m64n128k16, P from registers, V from shared memory (MN-major).
// Two warpgroups (128 query rows) share every K/V block; one CTA per SM (S, O: 64 fp32 registers each).
// Layouts and descriptors: ../common/wgmma.cuh.
#pragma once
#include <type_traits>
#include "../common/attention_math.cuh"
#include "../common/warp_mma.cuh"
#include "../common/wgmma.cuh"

namespace te_cuda {

template <typename T, int D>
struct FlashFwdWgmmaShape {
  static constexpr int kWarpgroups = 2, kThreads = 128 * kWarpgroups;
  static constexpr int kBr = 64 * kWarpgroups, kBc = 128, kStages = 3;
  static constexpr bool kTakes = D == 128;
  static constexpr int kQBytes = kBr * D * 2, kKBytes = kBc * D * 2, kVBytes = kBc * D * 2;
  // + 1024: the dynamic shared memory base is only 16-byte aligned; panels need 1024. Three K and
  // three V stages: 225 KB, under the 227 KB a Hopper CTA may have.
  static constexpr int kSmemBytes = kQBytes + kStages * (kKBytes + kVBytes) + 1024;
};

// Rows [0, kRows) x D of a global tile (row r at src + r * row_stride) into 128B-swizzled 64-column
// panels of kRows rows each; rows >= valid_rows are zero-filled.
template <int kRows, int D, int kThreads, typename T>
__device__ __forceinline__ void load_tile_sw128(unsigned char* dst, const T* src, int64_t row_stride, int valid_rows) {
  constexpr int kChunksPerRow = D / 8;
#pragma unroll 4
  for (int c = threadIdx.x; c < kRows * kChunksPerRow; c += kThreads) {
    const int r = c / kChunksPerRow, cc = c % kChunksPerRow;
    const bool valid = r < valid_rows;
    const T* g = valid ? src + r * row_stride + cc * 8 : src;
    cp_async_16(dst + (cc >> 3) * (kRows * 128) + sw128_offset(r, (cc & 7) * 8), g, valid);
  }
}

// The same copy with the per-thread address work done once per tile instead of once per chunk (kLean
// kernels): when a pass of kThreads covers whole rows, a multiple of 8 of them, every thread copies the
// same chunk column of rows r0, r0 + rows per pass, ..., whose swizzled offsets (r % 8 unchanged) and
// global addresses differ by constant steps.
template <int kRows, int D, int kThreads, typename T>
__device__ __forceinline__ void load_tile_sw128_rows(uint32_t dst, const T* src, int64_t row_stride, int valid_rows) {
  constexpr int kChunksPerRow = D / 8, kRowsPerPass = kThreads / kChunksPerRow;
  static_assert(kThreads % kChunksPerRow == 0 && kRowsPerPass % 8 == 0 && kRows % kRowsPerPass == 0,
                "load_tile_sw128_rows: a pass must cover whole rows, a multiple of 8 of them");
  const int r0 = threadIdx.x / kChunksPerRow, cc = threadIdx.x % kChunksPerRow;
  const uint32_t d = dst + (cc >> 3) * (kRows * 128) + sw128_offset(r0, (cc & 7) * 8);
  const T* g = src + r0 * row_stride + cc * 8;
  const int64_t step = kRowsPerPass * row_stride;
#pragma unroll
  for (int k = 0; k < kRows / kRowsPerPass; ++k) {
    const bool valid = r0 + k * kRowsPerPass < valid_rows;
    cp_async_16(d + k * kRowsPerPass * 128, valid ? g + k * step : src, valid);
  }
}

// 1 in the sm_90a image, where the kernel below has a body (elsewhere it is empty); the launcher reads
// it before picking the kernel (flash_launch.cuh). File-local, like the kernels of each generated file.
static __device__ int kFlashWgmmaImage = TE_WGMMA_ENABLED;

// Block j's S = Q K^T is issued together with block j - 1's P V, which completes during block j's
// softmax (FA3's intra-warpgroup overlap). Loads, one cp.async group per block: K of block j + kAheadK
// and V of block j + 1 are issued at block j (V j + 1 is first read at block j + 2, by its P V); with
// three stages of each, a stage is refilled only after the products that read it were waited for.
// kAheadK = 2 gives each K block two blocks' time to arrive; it measured the same as 1 (the launcher's
// default) on the H200, so the K loads are not what the forward waits for (PERF_NOTES.md v7).
// kQBlocksSlowest: the grid is (head, batch entry, query block) instead of (query block, head, batch
// entry): the last (under a causal mask the longest) query block of every head starts first
// (flash_launch.cuh lpt_order picks it; PERF_NOTES.md v9).
// kLean (the default; TE_FLASH_FWD=wgmma_classic turns it off; PERF_NOTES.md v11): less integer work
// per block, as ncu found the ALU the forward's busiest pipe: tile loads by load_tile_sw128_rows, descriptors as one
// base per tile plus constant steps (sw128_desc_plus), the mask code only in blocks that need it, the
// scale folded into the exponent's FMA (maxima of the raw scores; needs a.scale > 0), row maxima and
// sums in two partials each.
template <typename T, int D, int kAheadK, bool kQBlocksSlowest, bool kLean>
__global__ void __launch_bounds__(256, 1) flash_fwd_wgmma_kernel(const AttentionArgs a) {
  using S = FlashFwdWgmmaShape<T, D>;
  static_assert(S::kTakes, "flash_fwd_wgmma_kernel: d = dv = 128 only");
  static_assert(kAheadK == 1 || kAheadK == 2, "K is loaded one or two blocks ahead");
#if TE_WGMMA_ENABLED
  constexpr int kBr = S::kBr, kBc = S::kBc, kThreads = S::kThreads, kStages = S::kStages;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  unsigned char* sQ = smem_raw + ((1024 - (smem_addr(smem_raw) & 1023)) & 1023);
  unsigned char* sK = sQ + S::kQBytes;
  unsigned char* sV = sK + S::kStages * S::kKBytes;

  const int e = kQBlocksSlowest ? blockIdx.y : blockIdx.z, hh = kQBlocksSlowest ? blockIdx.x : blockIdx.y;
  const int hk = hh / (a.h / a.hkv);
  const Entry en = entry_of(a, e);
  // Last query block first, as in flash_fwd_kernel.
  const int q0 = kQBlocksSlowest ? (gridDim.z - 1 - blockIdx.z) * kBr : (gridDim.x - 1 - blockIdx.x) * kBr;
  const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, g = lane >> 2,
            t = lane & 3;
  // This thread's two query rows: row_of(0) and row_of(1) = row_of(0) + 8.
  auto row_of = [&](int r) { return q0 + wg * 64 + warp * 16 + g + r * 8; };
  T* obase = static_cast<T*>(a.o) + e * a.o_st.b + hh * a.o_st.h + en.q_row0 * a.o_st.s;
  float* lse_row = a.lse + (int64_t(e) * a.h + hh) * a.sq;

  int kv_lo = 0, kv_hi = 0;
  if (q0 < en.lq) visible_key_range(a, en, q0, min(q0 + kBr, en.lq), kv_lo, kv_hi);
  const int blk_begin = kv_lo / kBc, blk_end = (kv_hi + kBc - 1) / kBc;
  const int nblk = kv_hi > kv_lo ? blk_end - blk_begin : 0;

  const T* qbase = static_cast<const T*>(a.q) + e * a.q_st.b + hh * a.q_st.h + (en.q_row0 + q0) * a.q_st.s;
  const T* kbase = static_cast<const T*>(a.k) + e * a.k_st.b + hk * a.k_st.h + en.kv_row0 * a.k_st.s;
  const T* vbase = static_cast<const T*>(a.v) + e * a.v_st.b + hk * a.v_st.h + en.kv_row0 * a.v_st.s;
  auto load_tile = [&](auto rows, unsigned char* dst, const T* src, int64_t row_stride, int valid_rows) {
    constexpr int kRows = decltype(rows)::value;
    if constexpr (kLean) load_tile_sw128_rows<kRows, D, kThreads>(smem_addr(dst), src, row_stride, valid_rows);
    else load_tile_sw128<kRows, D, kThreads>(dst, src, row_stride, valid_rows);
  };
  using KRows = std::integral_constant<int, kBc>;
  auto load_k = [&](int blk) {
    if (blk >= nblk) return;
    const int k0 = (blk_begin + blk) * kBc;
    load_tile(KRows{}, sK + (blk % kStages) * S::kKBytes, kbase + k0 * a.k_st.s, a.k_st.s, en.lk - k0);
  };
  auto load_v = [&](int blk) {
    if (blk >= nblk) return;
    const int k0 = (blk_begin + blk) * kBc;
    load_tile(KRows{}, sV + (blk % kStages) * S::kVBytes, vbase + k0 * a.v_st.s, a.v_st.s, en.lk - k0);
  };
  // Groups before block 0: {Q, K 0, V 0} and {K 1 (kAheadK = 2)}; block j's group: {K j + kAheadK,
  // V j + 1}, committed even when empty so that "all but the newest group" always means up to block j.
  if (nblk > 0) {
    load_tile(std::integral_constant<int, kBr>{}, sQ, qbase, a.q_st.s, en.lq - q0);
    load_k(0);
    load_v(0);
    cp_async_commit();
    if (kAheadK == 2) load_k(1);
    cp_async_commit();
  }

  int lo[2], hi[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) allowed_keys(a, en, row_of(r), lo[r], hi[r]);
  const float scale2 = a.scale * kLog2e;

  float o[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) o[i] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  // This warpgroup's 64 rows of Q: the same offset in each 64-column panel.
  const uint32_t q_addr = smem_addr(sQ) + wg * 64 * 128;
  const uint64_t q_desc = sw128_desc(q_addr, 16, 1024);

  uint32_t p[kBc / 16][4];
  float s[64], x[64], corr[2];
  // K of block it and V of block it - 1 landed and are visible (also to the async proxy), every
  // thread finished the products of block it - 1 (so the stages refilled next are free), and S =
  // Q K^T of block it is issued (committed, not waited).
  auto start_block = [&](int it) {
    cp_async_wait<kAheadK - 1>();  // K of block it came in the group before the newest (kAheadK = 2)
    fence_proxy_async();
    __syncthreads();
    load_k(it + kAheadK);
    load_v(it + 1);
    cp_async_commit();
    // Zeroed while no wgmma is in flight: left undefined, the accumulator is carried around the loop
    // and the moves that carry it can land inside a pipeline stage (ptxas then serializes the wgmma).
#pragma unroll
    for (int i = 0; i < 64; ++i) s[i] = 0.f;
    const uint32_t k_addr = smem_addr(sK + (it % kStages) * S::kKBytes);
    const uint64_t k_desc = sw128_desc(k_addr, 16, 1024);
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      const int panel = ks / 4, col_bytes = (ks % 4) * 32;
      if constexpr (kLean)
        Wgmma<T>::ss(s, sw128_desc_plus(q_desc, panel * kBr * 128 + col_bytes),
                     sw128_desc_plus(k_desc, panel * kBc * 128 + col_bytes), 1);
      else
        Wgmma<T>::ss(s, sw128_desc(q_addr + panel * kBr * 128 + col_bytes, 16, 1024),
                     sw128_desc(k_addr + panel * kBc * 128 + col_bytes, 16, 1024), 1);
    }
    wgmma_commit();
  };
  // Online softmax of block it once S is complete: probabilities into x, the row sums and maxima
  // updated, corr = the factor O needs. s[4 n + c]: row row_of(c >> 1), key k0 + 8 n + 2 t + (c & 1).
  // x, never s, is written: an accumulator written by other instructions while a wgmma is in flight
  // (the previous block's P V) makes ptxas serialize every wgmma of the kernel.
  // kLean's softmax: kMasked (compile-time) has the per-element mask; maxima and sums in two partials
  // per row (even and odd keys), so that their chains are half as long.
  auto softmax_lean = [&](auto masked_c, int k0) {
    constexpr bool kMasked = decltype(masked_c)::value;
    float mx[2][2] = {{-INFINITY, -INFINITY}, {-INFINITY, -INFINITY}};
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int r = c >> 1;
        float v = s[4 * n + c];
        if constexpr (kMasked) {
          const int j = k0 + n * 8 + 2 * t + (c & 1);
          if (j < lo[r] || j >= hi[r]) v = -INFINITY;
          x[4 * n + c] = v;
        }
        mx[r][c & 1] = fmaxf(mx[r][c & 1], v);
      }
    float use[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mr = fmaxf(mx[r][0], mx[r][1]);
      mr = fmaxf(mr, __shfl_xor_sync(0xffffffffu, mr, 1));
      mr = fmaxf(mr, __shfl_xor_sync(0xffffffffu, mr, 2));
      const float nm = fmaxf(m[r], mr * scale2);
      use[r] = nm == -INFINITY ? 0.f : nm;
      corr[r] = fast_exp2(m[r] - use[r]);
      m[r] = nm;
    }
    float sum[2][2] = {{0.f, 0.f}, {0.f, 0.f}};
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const float v = kMasked ? x[4 * n + c] : s[4 * n + c];
        x[4 * n + c] = fast_exp2(fmaf(v, scale2, -use[c >> 1]));
        sum[c >> 1][c & 1] += x[4 * n + c];
      }
#pragma unroll
    for (int r = 0; r < 2; ++r) l[r] = l[r] * corr[r] + (sum[r][0] + sum[r][1]);
  };
  auto softmax = [&](int it) {
    wgmma_fence_operands(s);
    const int k0 = (blk_begin + it) * kBc;
    const bool masked = block_needs_mask(a, en, q0, q0 + kBr, k0, k0 + kBc);
    if constexpr (kLean) {
      if (masked) softmax_lean(std::true_type{}, k0);
      else softmax_lean(std::false_type{}, k0);
      return;
    }
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int r = c >> 1, j = k0 + n * 8 + 2 * t + (c & 1);
        float v = s[4 * n + c] * scale2;
        if (masked && (j < lo[r] || j >= hi[r])) v = -INFINITY;
        x[4 * n + c] = v;
        mx[r] = fmaxf(mx[r], v);
      }
    float use[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float nm = fmaxf(m[r], mx[r]);
      // A row with every key masked so far keeps max -inf; subtract 0 then so exp2 gives 0, not NaN.
      use[r] = nm == -INFINITY ? 0.f : nm;
      corr[r] = fast_exp2(m[r] - use[r]);
      m[r] = nm;
      l[r] *= corr[r];
    }
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        x[4 * n + c] = fast_exp2(x[4 * n + c] - use[c >> 1]);
        l[c >> 1] += x[4 * n + c];
      }
  };
  // With every P V so far complete: O to the new row maxima, P packed for the next P V.
  auto rescale_and_pack = [&] {
#pragma unroll
    for (int r = 0; r < 2; ++r)
      if (corr[r] != 1.f) {
#pragma unroll
        for (int n = 0; n < D / 8; ++n) {
          o[4 * n + 2 * r] *= corr[r];
          o[4 * n + 2 * r + 1] *= corr[r];
        }
      }
#pragma unroll
    for (int ks = 0; ks < kBc / 16; ++ks) {
      p[ks][0] = Mma<T>::pack(x[8 * ks + 0], x[8 * ks + 1]);
      p[ks][1] = Mma<T>::pack(x[8 * ks + 2], x[8 * ks + 3]);
      p[ks][2] = Mma<T>::pack(x[8 * ks + 4], x[8 * ks + 5]);
      p[ks][3] = Mma<T>::pack(x[8 * ks + 6], x[8 * ks + 7]);
    }
  };
  // O += P V of block it (issued, committed, not waited).
  auto issue_pv = [&](int it) {
    const uint32_t v_addr = smem_addr(sV + (it % kStages) * S::kVBytes);
    const uint64_t v_desc = sw128_desc(v_addr, kBc * 128, 1024);
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < kBc / 16; ++ks)
      Wgmma<T>::rs_mn(o, p[ks], kLean ? sw128_desc_plus(v_desc, ks * 16 * 128)
                                      : sw128_desc(v_addr + ks * 16 * 128, kBc * 128, 1024));
    wgmma_commit();
  };
  auto wait_all = [&] {
    wgmma_wait<0>();
    wgmma_fence_operands(o);
    wgmma_keep_operands(p);
  };

  // Every wait below is unconditional: ptxas tracks the wgmma pipeline through the control flow, and
  // a wait under a branch would look skippable to it (it then serializes every wgmma).
  if (nblk > 0) {
    start_block(0);
    wait_all();
    softmax(0);
    rescale_and_pack();
  }
  for (int it = 1; it < nblk; ++it) {
    start_block(it);
    issue_pv(it - 1);  // runs on the tensor cores during this block's softmax
    wgmma_wait<1>();   // S of block it
    softmax(it);
    wait_all();
    rescale_and_pack();
  }
  if (nblk > 0) {
    // V of the last block: its group is the one before the newest.
    cp_async_wait<1>();
    fence_proxy_async();
    __syncthreads();
    issue_pv(nblk - 1);
    wait_all();
  }
  cp_async_wait<0>();

  const float sink = sink_logit2(a, hh);
  const bool write_zero_rows = !a.thd;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
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
      for (int n = 0; n < D / 8; ++n) {
        const float v0 = live ? o[4 * n + 2 * r] * inv : 0.f;
        const float v1 = live ? o[4 * n + 2 * r + 1] * inv : 0.f;
        *reinterpret_cast<uint32_t*>(orow + n * 8 + 2 * t) = Mma<T>::pack(v0, v1);
      }
    }
    if (t == 0) lse_row[i] = (live && l[r] > 0.f) ? (m[r] + log2f(l[r])) * kLn2 : -INFINITY;
  }
#endif
}

}  // namespace te_cuda
