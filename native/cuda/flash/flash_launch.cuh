// Launchers of the flash kernels and the table of tile shapes they use. The generated files in
// generated/ instantiate launch_flash_fwd / launch_flash_bwd once per (dtype, d, dv) row of
// flash_variants.json; nothing else instantiates kernels.
#pragma once
#include <cuda_runtime.h>
#include "flash_bwd_kernel.cuh"
#include "flash_fwd_kernel.cuh"
#include "flash_launch.h"

namespace te_cuda {

// Forward tile shape per q/k head dim (query rows per CTA = 16 * warps, keys per pipeline stage):
//   d <= 128: 8 warps x 64 keys. 128 query rows per CTA halves K/V traffic per query; shared memory
//             (Q + two K/V stages) is 104 KB at d = 128, so two CTAs share an H100 SM.
//   d = 192:  4 warps x 64 keys: 128 KB with two stages, still under the 163 KB of an A100.
//   d = 256:  4 warps x 32 keys: a 64-key stage would need 202 KB; 32-key stages keep it at 101 KB.
template <int D>
struct FwdTile {
  static constexpr int kWarps = D <= 128 ? 8 : 4;
  static constexpr int kBc = D <= 192 ? 64 : 32;
};
// Backward: 64 x 64 blocks with 8 warps for every head dim (154 KB of shared memory at d = 256).

template <typename Kernel>
inline cudaError_t set_smem(Kernel kernel, int bytes) {
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

template <typename T, int D, int DV>
cudaError_t launch_flash_fwd(const AttentionArgs& a, cudaStream_t stream) {
  using Tile = FwdTile<D>;
  using S = FlashFwdShape<T, D, DV, Tile::kWarps, Tile::kBc>;
  auto kernel = flash_fwd_kernel<T, D, DV, Tile::kWarps, Tile::kBc>;
  cudaError_t err = set_smem(kernel, S::kSmemBytes);
  if (err != cudaSuccess) return err;
  const dim3 grid((a.sq + S::kBr - 1) / S::kBr, a.h, a.b);
  kernel<<<grid, S::kThreads, S::kSmemBytes, stream>>>(a);
  return cudaGetLastError();
}

template <typename T, int D, int DV>
cudaError_t launch_flash_bwd(const AttentionArgs& a, cudaStream_t stream) {
  const BwdWorkspace ws = bwd_workspace(a);
  cudaError_t err = cudaMemsetAsync(ws.dq_acc, 0, sizeof(float) * size_t(a.b) * a.h * a.sq * a.d, stream);
  if (err != cudaSuccess) return err;
  const int64_t rows = int64_t(a.b) * a.h * a.sq;
  flash_bwd_dot_kernel<T, DV><<<unsigned((rows + 7) / 8), 256, 0, stream>>>(a);
  using S = FlashBwdShape<T, D, DV>;
  auto kernel = flash_bwd_kernel<T, D, DV>;
  err = set_smem(kernel, S::kSmemBytes);
  if (err != cudaSuccess) return err;
  const dim3 grid((a.skv + S::kBc - 1) / S::kBc, a.hkv, a.b);
  kernel<<<grid, S::kThreads, S::kSmemBytes, stream>>>(a);
  const int64_t total = rows * a.d;
  flash_bwd_dq_convert_kernel<T><<<unsigned((total + 255) / 256), 256, 0, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace te_cuda
