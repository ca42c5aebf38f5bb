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
  kUidDO, kUidDQ, kUidDK, kUidDV, kUidSoftmaxSum, kUidDQAccum, kUidKeepRate, kUidLeftBound, kUidBias, kUidDBias,
  kUidAlibiSlopes, kUidRaggedQ, kUidRaggedK, kUidRaggedV, kUidRaggedO, kUidRaggedDO, kUidRaggedDQ, kUidRaggedDK,
  kUidRaggedDV, kUidDropoutSeed, kUidDropoutOffset, kUidDropoutScale, kUidSink, kUidDSink,
  kUidRightBound
};

// Element strides of a [batch, head, seq] view (the channel stride is 1).
struct BhsStrides {
  int64_t b = 0, h = 0, s = 0;
};

struct SdpaConfig {
  abi::DataType io = abi::CUDNN_DATA_HALF;  // q, k, v, o and gradients
  int64_t b = 0, h = 0, hg = 0, d = 0, dv = 0, sq = 0, skv = 0;
  bool causal = false, bottom_right = false;
  int64_t window_left = -1;   // keys j >= diagonal - window_left; -1 = unbounded
  int64_t window_right = -1;  // keys j <= diagonal + window_right when > 0 (causal is right = 0)
  bool padded = false;         // per-entry lengths from cu_seqlens (seq_len tensors)
  // thd: every q/k/v/o (and gradient) tensor starts entry e at a ragged offset (kUidRagged*, int64 [b+1]);
  // the batch strides below are then those of a packed [b, s, h, d] view, which cuDNN does not use.
  bool ragged = false;
  bool deterministic = false;  // backward: only engines without a nondeterministic note
  // post_scale_bias [bias_b, bias_h, sq, skv] (bias_b in {1, b}, bias_h in {1, h}) added after the
  // scale; its gradient (contiguous, same shape) is the reduction of dS over the broadcast dims.
  bool bias = false, dbias = false;
  abi::DataType bias_type = abi::CUDNN_DATA_HALF;
  int64_t bias_b = 1, bias_h = 1;
  BhsStrides bias_strides;  // element strides of bias dims 0, 1, 2 (dim 3 is contiguous)
  // ALiBi: -slope * |j - i - diagonal offset| from fp32 slopes [h]. Per-entry slopes [b, h] are
  // materialised as an fp32 bias [b, h, sq, skv] instead (alibi_as_bias; the graph sees a bias).
  bool alibi = false, alibi_as_bias = false;
  // Dropout with cuDNN's own Philox mask (int64 seed and offset tensors): not the mask of dropout-rng.ts.
  double dropout = 0;
  // Softmax with a sink logit per head (fp32 [1, h, 1, 1]): off_by_one (a zero sink) or learnable (TE's
  // softmax_offset), whose gradient the backward reduces when dsink.
  bool sink = false, dsink = false;
  BhsStrides q, k, v, o, d_o, dq, dk, dv_out;
  int device = 0;

  std::vector<int64_t> key(bool backward) const;
  // fp32 scratch the backward graph reads and writes besides the plan's workspace.
  int64_t softmaxSumBytes() const { return b * h * sq * 4; }
  // dQ written directly by the dS K matmul (no fp32 accumulator): the deterministic path, which is
  // also the only one that computes dBias (cuDNN's dP-workspace implementation).
  bool dqDirect() const { return deterministic || dbias; }
  int64_t dqAccumBytes() const { return dqDirect() ? 0 : b * h * sq * d * 4; }
  // The bottom-right diagonal offset (lk - lq) as a scalar: full lengths with a causal or ALiBi diagonal.
  bool needsDiagShift() const { return !padded && bottom_right && (rightBounded() || alibi); }
  bool rightBounded() const { return causal || window_right > 0; }
  // Whether a mask sets logits to -inf (the graphs then read a -inf scalar).
  bool masked() const { return padded || rightBounded() || window_left >= 0; }
};

std::unique_ptr<ExecutionPlan> buildForwardPlan(const Library& lib, abi::Handle handle, const SdpaConfig& c);
std::unique_ptr<ExecutionPlan> buildBackwardPlan(const Library& lib, abi::Handle handle, const SdpaConfig& c);

}  // namespace te::cudnn
