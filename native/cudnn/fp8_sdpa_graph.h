// The FP8 scaled-dot-product attention graphs of cuda.cudnn (TE's FusedAttention sub-backend 2) as
// cuDNN operation graphs: per-tensor scaling as in TE's DelayedScaling recipe. Q, K, V (and O) are
// FP8 in the forward format; the matmuls accumulate in fp32 and every FP8 operand is descaled after
// its matmul; P (the softmax output) and dP are quantised inside the graph with the S and dP scales,
// and the graph reports the amax of S and O (forward) and of dP, dQ, dK, dV (backward), measured
// before their scale is applied. Scales, descales and amaxes are fp32 scalars in device memory, so a
// recipe's state never leaves the GPU. Everything baked into a graph is in Fp8SdpaConfig, whose
// key() is the plan cache key.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "operation_graph.h"
#include "sdpa_graph.h"

namespace te::cudnn {

// Variant-pack ids of the FP8 graphs' memory tensors and host scalars.
enum Fp8SdpaUid : int64_t {
  kFp8UidQ = 101, kFp8UidK, kFp8UidV, kFp8UidO, kFp8UidStats, kFp8UidAttnScale, kFp8UidNegInf, kFp8UidSeqLenQ,
  kFp8UidSeqLenKv,
  // forward scaling
  kFp8UidDescaleQ, kFp8UidDescaleK, kFp8UidDescaleV, kFp8UidDescaleS, kFp8UidScaleS, kFp8UidScaleO, kFp8UidAmaxS,
  kFp8UidAmaxO,
  // backward
  kFp8UidDO, kFp8UidDQ, kFp8UidDK, kFp8UidDV, kFp8UidDescaleO, kFp8UidDescaleDO, kFp8UidDescaleDP, kFp8UidScaleDP,
  kFp8UidScaleDQ, kFp8UidScaleDK, kFp8UidScaleDV, kFp8UidAmaxDP, kFp8UidAmaxDQ, kFp8UidAmaxDK, kFp8UidAmaxDV
};

struct Fp8SdpaConfig {
  abi::DataType fwd = abi::CUDNN_DATA_FP8_E4M3;  // q, k, v, o and the quantised P
  abi::DataType bwd = abi::CUDNN_DATA_FP8_E5M2;  // dO, the quantised dP, dq, dk, dv (E5M2 under HYBRID)
  int64_t b = 0, h = 0, hg = 0, d = 0, dv = 0, sq = 0, skv = 0;
  bool causal = false;  // top-left diagonal (cuDNN's FP8 graphs have no bottom-right form on sm90)
  bool padded = false;  // per-entry lengths from cu_seqlens (seq_len tensors)
  BhsStrides q, k, v, o, d_o, dq, dk, dv_out;
  int device = 0;

  std::vector<int64_t> key(bool backward) const;
};

std::unique_ptr<ExecutionPlan> buildFp8ForwardPlan(const Library& lib, abi::Handle handle, const Fp8SdpaConfig& c);
std::unique_ptr<ExecutionPlan> buildFp8BackwardPlan(const Library& lib, abi::Handle handle, const Fp8SdpaConfig& c);

}  // namespace te::cudnn
