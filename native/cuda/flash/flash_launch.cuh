// Launchers of the flash kernels and the table of tile shapes they use. The generated files in
// generated/ instantiate launch_flash_fwd / launch_flash_bwd once per (dtype, d, dv) row of
// flash_variants.json; nothing else instantiates kernels.
#pragma once
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>
#include "flash_bwd_dq_kernel.cuh"
#include "flash_bwd_kernel.cuh"
#include "flash_bwd_wgmma_kernel.cuh"
#include "flash_bwd_wide_kernel.cuh"
#include "flash_fwd_kernel.cuh"
#include "flash_fwd_wgmma_kernel.cuh"
#include "flash_launch.h"

namespace te_cuda {

// Forward tile shape per q/k head dim (query rows per CTA = 16 * warps * row tiles per warp):
//   d <= 128: 4 warps x 2 row tiles (128 query rows) x 64 keys. Two row tiles per warp let every K/V
//             fragment read from shared memory feed four tensor-core instructions instead of two. At
//             d = 128 the 2 x 16 output tiles plus 2 x 8 score tiles take 255 registers and spill
//             ~80 bytes (ptxas -v), yet measured faster on the H100 than 32-key blocks without
//             spills: long_4k_full 247 -> 275 TFLOP/s (native/cuda/flash/PERF_NOTES.md, v2).
//             Shared memory (Q + two K/V stages) is 104 KB at d = 128.
//   d = 192:  4 warps x 1 row tile x 64 keys: 128 KB with two stages, under the 163 KB of an A100;
//             two row tiles would not fit the registers (2 x 24 output tiles).
//   d = 256:  4 warps x 1 row tile x 32 keys: a 64-key stage would need 202 KB; 32 keeps it at 101 KB.
template <int D>
struct FwdTile {
  static constexpr int kWarps = 4;
  static constexpr int kMT = D <= 128 ? 2 : 1;
  static constexpr int kBc = D <= 192 ? 64 : 32;
};

// Whether a call needs the kernels' bias / ALiBi / dropout paths.
inline bool needs_extras(const AttentionArgs& a) {
  return a.bias_kind != kNoBias || a.alibi != nullptr || a.dropout > 0.f;
}

template <typename Kernel>
inline cudaError_t set_smem(Kernel kernel, int bytes) {
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

// Kernel choice. The wgmma kernels (sm_90a) take d = dv = 128 calls without bias, ALiBi or dropout
// on a Hopper device whose loaded image has their code (kFlashWgmmaImage, read once); other calls go
// to the mma.sync kernels. Tuning overrides, so that the standalone driver can time the kernels side
// by side in one run: TE_FLASH_FWD=mma, wgmma_k2, wgmma_classic, wgmma_lpt or wgmma_nolpt,
// TE_FLASH_BWD=wgmma_classic, wgmma_lpt, wgmma_nolpt, mma64x128 or mma64x64.
static inline bool wgmma_usable(const AttentionArgs& a) {
  if (needs_extras(a)) return false;
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess || major != 9)
    return false;
  static const bool image = [] {
    int flag = 0;
    if (cudaMemcpyFromSymbol(&flag, kFlashWgmmaImage, sizeof flag) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return flag == 1;
  }();
  return image;
}

static inline bool env_is(const char* name, const char* value) {
  const char* v = getenv(name);
  return v && strcmp(v, value) == 0;
}

// Grid order of the wgmma kernels: longest CTAs first (LPT: the block index as the slowest grid
// dimension, so the longest CTAs of every head, under a causal mask, start together) or the block index
// fastest (the CTAs in flight then share a few heads' K/V or Q/dO in the L2). Without a causal mask the
// CTAs are of one length and LPT has nothing to gain. The forward takes LPT on every causal call, the
// backward on causal calls of at most kLptMaxPairs (kv head, batch entry) pairs: with more, its CTAs in
// flight span too many pairs' Q/dO for the L2. Measured on the H200 (PERF_NOTES.md v9, v10): forward
// test_1 0.173 -> 0.144 ms, test_3 and long_4k_causal -1 to -2%; fwd+bwd with both, test_1 (32 pairs)
// 0.669 -> 0.573 ms and test_3 (8 pairs) 14.81 -> 13.45, while the backward's LPT made long_4k_causal
// (128 pairs) 7.27 -> 7.92 and the non-causal long_4k_full 13.14 -> 14.37. var (TE_FLASH_FWD or
// TE_FLASH_BWD) = wgmma_lpt / wgmma_nolpt forces either order.
constexpr int kLptMaxPairs = 64;
static inline bool lpt_order(const char* var, bool by_rule) {
  if (env_is(var, "wgmma_lpt")) return true;
  if (env_is(var, "wgmma_nolpt")) return false;
  return by_rule;
}

template <typename T, int D, int kAheadK, bool kQBlocksSlowest, bool kLean = false>
cudaError_t launch_flash_fwd_wgmma(const AttentionArgs& a, cudaStream_t stream) {
  using W = FlashFwdWgmmaShape<T, D>;
  auto kernel = flash_fwd_wgmma_kernel<T, D, kAheadK, kQBlocksSlowest, kLean>;
  cudaError_t err = set_smem(kernel, W::kSmemBytes);
  if (err != cudaSuccess) return err;
  const int nqb = (a.sq + W::kBr - 1) / W::kBr;
  const dim3 grid = kQBlocksSlowest ? dim3(a.h, a.b, nqb) : dim3(nqb, a.h, a.b);
  kernel<<<grid, W::kThreads, W::kSmemBytes, stream>>>(a);
  return cudaGetLastError();
}

// Forward: wgmma where usable, K loaded one block ahead, the kLean kernel (PERF_NOTES.md v11: test_3's
// forward 3.48 -> 2.45 ms on the H200) on calls of a positive scale, which it folds into the exponent;
// TE_FLASH_FWD=wgmma_classic: the kernel before it, wgmma_k2: that one with K two blocks ahead (measured
// the same, v7); grid order by lpt_order; else mma.sync.
template <typename T, int D, int DV>
cudaError_t launch_flash_fwd(const AttentionArgs& a, cudaStream_t stream) {
  if constexpr (FlashFwdWgmmaShape<T, D>::kTakes && D == DV) {
    if (!env_is("TE_FLASH_FWD", "mma") && wgmma_usable(a)) {
      const bool lpt = lpt_order("TE_FLASH_FWD", a.causal != 0);
      if (env_is("TE_FLASH_FWD", "wgmma_k2")) return launch_flash_fwd_wgmma<T, D, 2, false>(a, stream);
      if (!env_is("TE_FLASH_FWD", "wgmma_classic") && a.scale > 0.f)
        return lpt ? launch_flash_fwd_wgmma<T, D, 1, true, true>(a, stream)
                   : launch_flash_fwd_wgmma<T, D, 1, false, true>(a, stream);
      return lpt ? launch_flash_fwd_wgmma<T, D, 1, true>(a, stream) : launch_flash_fwd_wgmma<T, D, 1, false>(a, stream);
    }
  }
  using Tile = FwdTile<D>;
  using S = FlashFwdShape<T, D, DV, Tile::kWarps, Tile::kMT, Tile::kBc>;
  auto kernel = needs_extras(a) ? flash_fwd_kernel<T, D, DV, Tile::kWarps, Tile::kMT, Tile::kBc, true>
                                : flash_fwd_kernel<T, D, DV, Tile::kWarps, Tile::kMT, Tile::kBc, false>;
  cudaError_t err = set_smem(kernel, S::kSmemBytes);
  if (err != cudaSuccess) return err;
  const dim3 grid((a.sq + S::kBr - 1) / S::kBr, a.h, a.b);
  kernel<<<grid, S::kThreads, S::kSmemBytes, stream>>>(a);
  return cudaGetLastError();
}

// Whether the device grants a kernel this much dynamic shared memory (the 64 x 128 mma.sync kernel's
// 171 KB at d = 128: an H100 or A100, not an sm_86/89 part).
inline bool smem_fits(int bytes) {
  int dev = 0, limit = 0;
  return cudaGetDevice(&dev) == cudaSuccess &&
         cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) == cudaSuccess &&
         bytes <= limit;
}

template <typename Kernel>
inline cudaError_t launch_bwd_kv(Kernel kernel, int smem, int kc, int threads, const AttentionArgs& a,
                                 cudaStream_t stream) {
  cudaError_t err = set_smem(kernel, smem);
  if (err != cudaSuccess) return err;
  const dim3 grid((a.skv + kc - 1) / kc, a.hkv, a.b);
  kernel<<<grid, threads, smem, stream>>>(a);
  return cudaGetLastError();
}

// The wgmma dK/dV(/atomic dQ) kernel, grid order by lpt_order (the atomic-dQ form; the deterministic one
// keeps the key block fastest).
template <typename T, int D, int DV, bool kLean>
cudaError_t launch_bwd_wgmma(const AttentionArgs& a, bool atomic_dq, cudaStream_t stream) {
  using G = FlashBwdWgmmaShape<T, D, DV, 2>;
  if (atomic_dq && lpt_order("TE_FLASH_BWD", a.causal != 0 && a.hkv * a.b <= kLptMaxPairs)) {
    auto kernel = flash_bwd_wgmma_kernel<T, D, DV, true, 2, true, kLean>;
    cudaError_t err = set_smem(kernel, G::kSmemBytes);
    if (err != cudaSuccess) return err;
    kernel<<<dim3(a.hkv, a.b, (a.skv + G::kBc - 1) / G::kBc), G::kThreads, G::kSmemBytes, stream>>>(a);
    return cudaGetLastError();
  }
  auto kernel = atomic_dq ? flash_bwd_wgmma_kernel<T, D, DV, true, 2, false, kLean>
                          : flash_bwd_wgmma_kernel<T, D, DV, false, 2, false, kLean>;
  return launch_bwd_kv(kernel, G::kSmemBytes, G::kBc, G::kThreads, a, stream);
}

// The dK/dV(/atomic dQ) kernel: wgmma (flash_bwd_wgmma_kernel.cuh) where usable, with the next two
// query blocks' Q/dO in flight (one measured ~1% slower, PERF_NOTES.md v8), the kLean kernel (v11;
// TE_FLASH_BWD=wgmma_classic: the one before it), else mma.sync with 64 x 128 tiles
// (flash_bwd_wide_kernel.cuh) where its shape takes the head dims, the shared memory fits and the call
// has no bias/ALiBi/dropout (with them it measured slower than 64 x 64 on the H200: test_2 fwd+bwd 2.06
// against 1.84 ms), else 64 x 64 (flash_bwd_kernel.cuh).
template <typename T, int D, int DV>
cudaError_t launch_bwd_dkdv(const AttentionArgs& a, bool extras, bool atomic_dq, cudaStream_t stream) {
  if constexpr (FlashBwdWgmmaShape<T, D, DV, 2>::kTakes) {
    if (!env_is("TE_FLASH_BWD", "mma64x128") && !env_is("TE_FLASH_BWD", "mma64x64") && wgmma_usable(a))
      return env_is("TE_FLASH_BWD", "wgmma_classic") ? launch_bwd_wgmma<T, D, DV, false>(a, atomic_dq, stream)
                                                     : launch_bwd_wgmma<T, D, DV, true>(a, atomic_dq, stream);
  }
  using W = FlashBwdWideShape<T, D, DV>;
  if constexpr (W::kTakes) {
    if (!extras && !env_is("TE_FLASH_BWD", "mma64x64") && smem_fits(W::kSmemBytes)) {
      auto kernel = atomic_dq ? flash_bwd_wide_kernel<T, D, DV, false, true> : flash_bwd_wide_kernel<T, D, DV, false, false>;
      return launch_bwd_kv(kernel, W::kSmemBytes, W::kBc, W::kThreads, a, stream);
    }
  }
  using S = FlashBwdShape<T, D, DV>;
  auto kernel = extras ? (atomic_dq ? flash_bwd_kernel<T, D, DV, true, true> : flash_bwd_kernel<T, D, DV, true, false>)
                       : (atomic_dq ? flash_bwd_kernel<T, D, DV, false, true> : flash_bwd_kernel<T, D, DV, false, false>);
  return launch_bwd_kv(kernel, S::kSmemBytes, S::kBc, S::kThreads, a, stream);
}

// a.deterministic: dK/dV without the atomic dQ, then the separate dQ pass (flash_bwd_dq_kernel.cuh);
// that pass writes every live dQ row once, so the accumulator needs no zeroing.
template <typename T, int D, int DV>
cudaError_t launch_flash_bwd(const AttentionArgs& a, cudaStream_t stream) {
  const BwdWorkspace ws = bwd_workspace(a);
  const bool extras = needs_extras(a), atomic_dq = !a.deterministic;
  cudaError_t err = cudaSuccess;
  if (atomic_dq) err = cudaMemsetAsync(ws.dq_acc, 0, sizeof(float) * size_t(a.b) * a.h * a.sq * a.d, stream);
  if (err != cudaSuccess) return err;
  const int64_t rows = int64_t(a.b) * a.h * a.sq;
  flash_bwd_dot_kernel<T, DV><<<unsigned((rows + 7) / 8), 256, 0, stream>>>(a);
  err = launch_bwd_dkdv<T, D, DV>(a, extras, atomic_dq, stream);
  if (err != cudaSuccess) return err;
  if (!atomic_dq) {
    using Q = FlashBwdDqShape<T, D, DV>;
    auto dq_kernel = extras ? flash_bwd_dq_kernel<T, D, DV, true> : flash_bwd_dq_kernel<T, D, DV, false>;
    err = set_smem(dq_kernel, Q::kSmemBytes);
    if (err != cudaSuccess) return err;
    const dim3 dq_grid((a.sq + Q::kBr - 1) / Q::kBr, a.h, a.b);
    dq_kernel<<<dq_grid, Q::kThreads, Q::kSmemBytes, stream>>>(a);
  }
  const int64_t total = rows * a.d;
  flash_bwd_dq_convert_kernel<T><<<unsigned((total + 255) / 256), 256, 0, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace te_cuda
