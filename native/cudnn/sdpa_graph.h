// The scaled-dot-product attention graphs of cuda.cudnn as cuDNN operation graphs (the decomposition
// that cuDNN's fused flash-attention engines recognise): forward with softmax statistics (training
// mode) and backward to dQ, dK, dV. Everything baked into a graph is in SdpaConfig, whose key() is
// the plan cache key.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "operation_graph.h"

namespace te::cudnn {

// Variant-pack ids of the graphs' memory tensors and host scalars.
enum SdpaUid : int64_t {
  kUidQ = 1, kUidK, kUidV, kUidO, kUidStats, kUidScale, kUidNegInf, kUidSeqLenQ, kUidSeqLenKv, kUidDiagShift,
  kUidDO, kUidDQ, kUidDK, kUidDV, kUidSoftmaxSum, kUidDQAccum, kUidOne, kUidLeftBound
};

// Element strides of a [batch, head, seq] view (the channel stride is 1).
struct BhsStrides {
  int64_t b = 0, h = 0, s = 0;
};

struct SdpaConfig {
  abi::DataType io = abi::CUDNN_DATA_HALF;  // q, k, v, o and gradients
  int64_t b = 0, h = 0, hg = 0, d = 0, dv = 0, sq = 0, skv = 0;
  bool causal = false, bottom_right = false;
  int64_t window_left = -1;  // keys j >= diagonal - window_left (with causal only); -1 = unbounded
  bool padded = false;         // per-entry lengths from cu_seqlens (seq_len tensors)
  bool deterministic = false;  // backward: dQ without the fp32 accumulation workspace
  BhsStrides q, k, v, o, d_o, dq, dk, dv_out;
  int device = 0;

  std::vector<int64_t> key(bool backward) const;
  // fp32 scratch the backward graph reads and writes besides the plan's workspace.
  int64_t softmaxSumBytes() const { return b * h * sq * 4; }
  int64_t dqAccumBytes() const { return deterministic ? 0 : b * h * sq * d * 4; }
};

std::unique_ptr<ExecutionPlan> buildForwardPlan(const Library& lib, abi::Handle handle, const SdpaConfig& c);
std::unique_ptr<ExecutionPlan> buildBackwardPlan(const Library& lib, abi::Handle handle, const SdpaConfig& c);

}  // namespace te::cudnn
