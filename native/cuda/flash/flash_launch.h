// Declarations of the flash launchers; their definitions (flash_launch.cuh) are instantiated only by
// the generated files, so including this header compiles no kernels.
#pragma once
#include <cuda_runtime.h>
#include "../common/attention_args.h"

namespace te_cuda {
template <typename T, int D, int DV>
cudaError_t launch_flash_fwd(const AttentionArgs& a, cudaStream_t stream);
template <typename T, int D, int DV>
cudaError_t launch_flash_bwd(const AttentionArgs& a, cudaStream_t stream);
}  // namespace te_cuda
