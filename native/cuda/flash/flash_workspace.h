// The backward pass's device scratch: Dvec = rowsum(dO * O) and the fp32 dQ accumulator.
#pragma once
#include <stddef.h>
#include "../common/attention_args.h"

namespace te_cuda {

// Workspace layout (fp32): Dvec [b, h, sq] padded to a multiple of 4 floats, then the dQ accumulator
// [b, h, sq, d]: the padding keeps dQ rows 16-byte aligned for the vector atomics (float2 / float4)
// whatever b * h * sq is.
struct BwdWorkspace {
  float* dvec;
  float* dq_acc;
};
__host__ __device__ inline size_t bwd_dvec_floats(const AttentionArgs& a) {
  return (size_t(a.b) * a.h * a.sq + 3) / 4 * 4;
}
__host__ __device__ inline size_t bwd_workspace_floats(const AttentionArgs& a) {
  return bwd_dvec_floats(a) + size_t(a.b) * a.h * a.sq * size_t(a.d);
}
__host__ __device__ inline BwdWorkspace bwd_workspace(const AttentionArgs& a) {
  float* base = static_cast<float*>(a.workspace);
  return {base, base + bwd_dvec_floats(a)};
}

}  // namespace te_cuda
