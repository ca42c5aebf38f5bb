// Launchers of the flash kernels and the table of tile shapes they use. The generated files in
// generated/ instantiate launch_flash_fwd / launch_flash_bwd once per (dtype, d, dv) row of
// flash_variants.json; nothing else instantiates kernels.
#pragma once
#include <cuda_runtime.h>
#include "flash_bwd_dq_kernel.cuh"
#include "flash_bwd_kernel.cuh"
#include "flash_fwd_kernel.cuh"
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

template <typename T, int D, int DV>
cudaError_t launch_flash_fwd(const AttentionArgs& a, cudaStream_t stream) {
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
  using S = FlashBwdShape<T, D, DV>;
  auto kernel = extras ? (atomic_dq ? flash_bwd_kernel<T, D, DV, true, true> : flash_bwd_kernel<T, D, DV, true, false>)
                       : (atomic_dq ? flash_bwd_kernel<T, D, DV, false, true> : flash_bwd_kernel<T, D, DV, false, false>);
  err = set_smem(kernel, S::kSmemBytes);
  if (err != cudaSuccess) return err;
  const dim3 grid((a.skv + S::kBc - 1) / S::kBc, a.hkv, a.b);
  kernel<<<grid, S::kThreads, S::kSmemBytes, stream>>>(a);
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
