// The backward pass's device scratch: Dvec = rowsum(dO * O) and the fp32 dQ accumulator.
#pragma once
#include <stddef.h>
#include "../common/attention_args.h"

namespace te_cuda {

// Workspace layout (fp32): Dvec [b, h, sq], then dQ accumulator [b, h, sq, d].
struct BwdWorkspace {
  float* dvec;
  float* dq_acc;
};
__host__ __device__ inline size_t bwd_workspace_floats(const AttentionArgs& a) {
  return size_t(a.b) * a.h * a.sq * (1 + size_t(a.d));
}
__host__ __device__ inline BwdWorkspace bwd_workspace(const AttentionArgs& a) {
  float* base = static_cast<float*>(a.workspace);
  return {base, base + size_t(a.b) * a.h * a.sq};
}

}  // namespace te_cuda
