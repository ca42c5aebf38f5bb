#include "fp8_sdpa_graph.h"

namespace te::cudnn {
namespace {

constexpr abi::DataType kF32 = abi::CUDNN_DATA_FLOAT;
constexpr abi::DataType kI32 = abi::CUDNN_DATA_INT32;
constexpr abi::DataType kBool = abi::CUDNN_DATA_BOOLEAN;
const Dims kScalar{1, 1, 1, 1};

// An fp32 scalar in device memory (a scale, descale or amax of the recipe).
const Descriptor& deviceScalar(OperationGraph& g, int64_t uid) { return g.tensor(uid, kScalar, kScalar, kF32); }

// The tensors both directions share; the backward reads V transposed ([b, hg, dv, skv]).
struct Fp8Inputs {
  const Descriptor* q;
  const Descriptor* kt;  // K seen as [b, hg, d, skv]
  const Descriptor* v;
  const Descriptor* attn_scale;
  const Descriptor* neg_inf = nullptr;
  const Descriptor* seq_q = nullptr;
  const Descriptor* seq_kv = nullptr;
  const Descriptor* descale_q;
  const Descriptor* descale_k;
  const Descriptor* descale_v;
  const Descriptor* descale_s;
  const Descriptor* scale_s;
};

Fp8Inputs declareInputs(OperationGraph& g, const Fp8SdpaConfig& c, bool v_transposed) {
  Fp8Inputs in;
  in.q = &g.tensor(kFp8UidQ, {c.b, c.h, c.sq, c.d}, {c.q.b, c.q.h, c.q.s, 1}, c.fwd);
  in.kt = &g.tensor(kFp8UidK, {c.b, c.hg, c.d, c.skv}, {c.k.b, c.k.h, 1, c.k.s}, c.fwd);
  in.v = v_transposed ? &g.tensor(kFp8UidV, {c.b, c.hg, c.dv, c.skv}, {c.v.b, c.v.h, 1, c.v.s}, c.fwd)
                      : &g.tensor(kFp8UidV, {c.b, c.hg, c.skv, c.dv}, {c.v.b, c.v.h, c.v.s, 1}, c.fwd);
  in.attn_scale = &g.tensor(kFp8UidAttnScale, kScalar, kScalar, kF32, true);
  if (c.padded || c.causal) in.neg_inf = &g.tensor(kFp8UidNegInf, kScalar, kScalar, kF32, true);
  if (c.padded) {
    in.seq_q = &g.tensor(kFp8UidSeqLenQ, {c.b, 1, 1, 1}, kScalar, kI32);
    in.seq_kv = &g.tensor(kFp8UidSeqLenKv, {c.b, 1, 1, 1}, kScalar, kI32);
  }
  in.descale_q = &deviceScalar(g, kFp8UidDescaleQ);
  in.descale_k = &deviceScalar(g, kFp8UidDescaleK);
  in.descale_v = &deviceScalar(g, kFp8UidDescaleV);
  in.descale_s = &deviceScalar(g, kFp8UidDescaleS);
  in.scale_s = &deviceScalar(g, kFp8UidScaleS);
  return in;
}

// y = x * s for an fp32 virtual y of x's dims.
const Descriptor& times(OperationGraph& g, const Dims& dims, const Descriptor& x, const Descriptor& s) {
  const Descriptor& y = g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_MUL, x, &s, nullptr, y);
  return y;
}

// Logits past an entry's lengths become -inf (rows past lq, columns past lk).
const Descriptor& maskPadding(OperationGraph& g, const Fp8SdpaConfig& c, const Fp8Inputs& in, const Descriptor& s) {
  return maskPastLengths(g, {c.b, c.h, c.sq, c.skv}, s, in.seq_q, in.seq_kv, in.neg_inf);
}

// Causal (top-left): key j is kept for query row i when j <= i.
const Descriptor& maskCausal(OperationGraph& g, const Fp8SdpaConfig& c, const Fp8Inputs& in, const Descriptor& s) {
  const Dims dims{c.b, c.h, c.sq, c.skv};
  const Descriptor& row = g.virtualTensor(dims, kI32);
  const Descriptor& col = g.virtualTensor(dims, kI32);
  g.pointwise(abi::CUDNN_POINTWISE_GEN_INDEX, s, nullptr, nullptr, row, kF32, 2);
  g.pointwise(abi::CUDNN_POINTWISE_GEN_INDEX, s, nullptr, nullptr, col, kF32, 3);
  const Descriptor& keep = g.virtualTensor(dims, kBool);
  g.pointwise(abi::CUDNN_POINTWISE_CMP_GE, row, &col, nullptr, keep, kBool);
  const Descriptor& out = g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_BINARY_SELECT, s, in.neg_inf, &keep, out);
  return out;
}

// Masked logits in fp32: (Q K^T) * attn_scale * descale_q * descale_k, then the masks.
const Descriptor& maskedLogits(OperationGraph& g, const Fp8SdpaConfig& c, const Fp8Inputs& in) {
  const Dims dims{c.b, c.h, c.sq, c.skv};
  const Descriptor& qk = g.virtualTensor(dims, kF32);
  g.matmul(*in.q, *in.kt, qk, in.seq_q, in.seq_kv, nullptr);
  const Descriptor* s = &times(g, dims, qk, *in.attn_scale);
  s = &times(g, dims, *s, *in.descale_q);
  s = &times(g, dims, *s, *in.descale_k);
  if (c.padded) s = &maskPadding(g, c, in, *s);
  if (c.causal) s = &maskCausal(g, c, in, *s);
  return *s;
}

// An FP8 matmul's epilogue: c = (a @ b) [summed over a group's heads] * descale_a * descale_b *
// scale_c, with amax_c = amax before scale_c (what the recipe's next scale of c is computed from).
void fp8Matmul(OperationGraph& g, const Descriptor& a, const Descriptor& b, const Dims& full_dims,
               const Dims& out_dims, const Descriptor& descale_a, const Descriptor& descale_b,
               const Descriptor& scale_c, const Descriptor& c, const Descriptor& amax_c,
               const Descriptor* m_override, const Descriptor* k_override) {
  const Descriptor* x = &g.virtualTensor(full_dims, kF32);
  g.matmul(a, b, *x, m_override, nullptr, k_override);
  if (full_dims != out_dims) {
    const Descriptor& summed = g.virtualTensor(out_dims, kF32);
    g.reduction(abi::CUDNN_REDUCE_TENSOR_ADD, *x, summed);
    x = &summed;
  }
  x = &times(g, out_dims, *x, descale_a);
  x = &times(g, out_dims, *x, descale_b);
  g.pointwise(abi::CUDNN_POINTWISE_MUL, *x, &scale_c, nullptr, c);
  g.reduction(abi::CUDNN_REDUCE_TENSOR_AMAX, *x, amax_c);
}

}  // namespace

std::vector<int64_t> Fp8SdpaConfig::key(bool backward) const {
  std::vector<int64_t> k{backward, device, fwd, b, h, hg, d, dv, sq, skv, causal, padded};
  for (const BhsStrides* s : {&q, &this->k, &v, &o}) k.insert(k.end(), {s->b, s->h, s->s});
  if (backward) {
    k.push_back(bwd);
    for (const BhsStrides* s : {&d_o, &dq, &dk, &dv_out}) k.insert(k.end(), {s->b, s->h, s->s});
  }
  return k;
}

std::unique_ptr<ExecutionPlan> buildFp8ForwardPlan(const Library& lib, abi::Handle handle, const Fp8SdpaConfig& c) {
  OperationGraph g(lib);
  const Fp8Inputs in = declareInputs(g, c, false);
  const Descriptor& scale_o = deviceScalar(g, kFp8UidScaleO);
  const Descriptor& amax_s = deviceScalar(g, kFp8UidAmaxS);
  const Descriptor& amax_o = deviceScalar(g, kFp8UidAmaxO);
  const Descriptor& o = g.tensor(kFp8UidO, {c.b, c.h, c.sq, c.dv}, {c.o.b, c.o.h, c.o.s, 1}, c.fwd);
  const Dims row_dims{c.b, c.h, c.sq, 1};
  const Descriptor& stats = g.tensor(kFp8UidStats, row_dims, {c.h * c.sq, c.sq, 1, 1}, kF32);
  const Descriptor& s = maskedLogits(g, c, in);
  // Softmax with its statistics: lse = max + log(sum(exp(s - max))), P = exp(s - max) / sum.
  const Dims dims{c.b, c.h, c.sq, c.skv};
  const Descriptor& max = g.virtualTensor(row_dims, kF32);
  g.reduction(abi::CUDNN_REDUCE_TENSOR_MAX, s, max);
  const Descriptor& shifted = g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_SUB, s, &max, nullptr, shifted);
  const Descriptor& e = g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_EXP, shifted, nullptr, nullptr, e);
  const Descriptor& sum = g.virtualTensor(row_dims, kF32);
  g.reduction(abi::CUDNN_REDUCE_TENSOR_ADD, e, sum);
  const Descriptor& log_sum = g.virtualTensor(row_dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_LOG, sum, nullptr, nullptr, log_sum);
  g.pointwise(abi::CUDNN_POINTWISE_ADD, max, &log_sum, nullptr, stats);
  const Descriptor& p = g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_DIV, e, &sum, nullptr, p);
  // P is quantised with the S scale (its amax reported first) and read by the second matmul in FP8.
  g.reduction(abi::CUDNN_REDUCE_TENSOR_AMAX, p, amax_s);
  const Descriptor& p8 = g.virtualTensor(dims, c.fwd);
  g.pointwise(abi::CUDNN_POINTWISE_MUL, p, in.scale_s, nullptr, p8);
  const Dims o_dims{c.b, c.h, c.sq, c.dv};
  fp8Matmul(g, p8, *in.v, o_dims, o_dims, *in.descale_s, *in.descale_v, scale_o, o, amax_o, in.seq_q, in.seq_kv);
  return g.build(handle, false);
}

std::unique_ptr<ExecutionPlan> buildFp8BackwardPlan(const Library& lib, abi::Handle handle, const Fp8SdpaConfig& c) {
  OperationGraph g(lib);
  const Fp8Inputs in = declareInputs(g, c, true);
  const Dims row_dims{c.b, c.h, c.sq, 1};
  const Dims dims{c.b, c.h, c.sq, c.skv};
  const Dims transposed_dims{c.b, c.h, c.skv, c.sq};
  const Dims transposed_strides{c.h * c.sq * c.skv, c.sq * c.skv, 1, c.skv};
  const Descriptor& o = g.tensor(kFp8UidO, {c.b, c.h, c.sq, c.dv}, {c.o.b, c.o.h, c.o.s, 1}, c.fwd);
  const Descriptor& d_o = g.tensor(kFp8UidDO, {c.b, c.h, c.sq, c.dv}, {c.d_o.b, c.d_o.h, c.d_o.s, 1}, c.bwd);
  const Descriptor& stats = g.tensor(kFp8UidStats, row_dims, {c.h * c.sq, c.sq, 1, 1}, kF32);
  const Descriptor& dq = g.tensor(kFp8UidDQ, {c.b, c.h, c.sq, c.d}, {c.dq.b, c.dq.h, c.dq.s, 1}, c.bwd);
  const Descriptor& dk = g.tensor(kFp8UidDK, {c.b, c.hg, c.skv, c.d}, {c.dk.b, c.dk.h, c.dk.s, 1}, c.bwd);
  const Descriptor& dv =
      g.tensor(kFp8UidDV, {c.b, c.hg, c.skv, c.dv}, {c.dv_out.b, c.dv_out.h, c.dv_out.s, 1}, c.bwd);
  const Descriptor& descale_o = deviceScalar(g, kFp8UidDescaleO);
  const Descriptor& descale_do = deviceScalar(g, kFp8UidDescaleDO);
  const Descriptor& descale_dp = deviceScalar(g, kFp8UidDescaleDP);
  const Descriptor& scale_dp = deviceScalar(g, kFp8UidScaleDP);
  const Descriptor& scale_dq = deviceScalar(g, kFp8UidScaleDQ);
  const Descriptor& scale_dk = deviceScalar(g, kFp8UidScaleDK);
  const Descriptor& scale_dv = deviceScalar(g, kFp8UidScaleDV);
  const Descriptor& amax_dp = deviceScalar(g, kFp8UidAmaxDP);
  const Descriptor& amax_dq = deviceScalar(g, kFp8UidAmaxDQ);
  const Descriptor& amax_dk = deviceScalar(g, kFp8UidAmaxDK);
  const Descriptor& amax_dv = deviceScalar(g, kFp8UidAmaxDV);
  // Row sums of dO * O in real units (the softmax backward's correction term).
  const Descriptor& do_o = g.virtualTensor({c.b, c.h, c.sq, c.dv}, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_MUL, d_o, &o, nullptr, do_o);
  const Descriptor& row_sum = g.virtualTensor(row_dims, kF32);
  g.reduction(abi::CUDNN_REDUCE_TENSOR_ADD, do_o, row_sum);
  const Descriptor& softmax_sum = times(g, row_dims, times(g, row_dims, row_sum, descale_do), descale_o);
  // P recomputed from the forward's statistics, kept in fp32 for dS and quantised for dV.
  const Descriptor& s = maskedLogits(g, c, in);
  const Descriptor& centered = g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_SUB, s, &stats, nullptr, centered);
  const Descriptor& p = g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_EXP, centered, nullptr, nullptr, p);
  const Descriptor& p8 = g.virtualTensor(dims, c.fwd);
  g.pointwise(abi::CUDNN_POINTWISE_MUL, p, in.scale_s, nullptr, p8);
  const Descriptor& p8t = g.virtualTensor(transposed_dims, transposed_strides, c.fwd);
  g.reshape(p8, p8t);
  // dV = P^T dO (summed over the heads of a group).
  fp8Matmul(g, p8t, d_o, {c.b, c.h, c.skv, c.dv}, {c.b, c.hg, c.skv, c.dv}, *in.descale_s, descale_do, scale_dv, dv,
            amax_dv, in.seq_kv, in.seq_q);
  // dS = P * (dO V^T - softmax_sum) * attn_scale, reported (amax dP) and quantised with the dP scale.
  const Descriptor& dpv = g.virtualTensor(dims, kF32);
  g.matmul(d_o, *in.v, dpv, in.seq_q, in.seq_kv, nullptr);
  const Descriptor& dp_real = times(g, dims, times(g, dims, dpv, descale_do), *in.descale_v);
  const Descriptor& dp_centered = g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_SUB, dp_real, &softmax_sum, nullptr, dp_centered);
  const Descriptor& ds = times(g, dims, times(g, dims, dp_centered, p), *in.attn_scale);
  g.reduction(abi::CUDNN_REDUCE_TENSOR_AMAX, ds, amax_dp);
  const Descriptor& ds8 = g.virtualTensor(dims, c.bwd);
  g.pointwise(abi::CUDNN_POINTWISE_MUL, ds, &scale_dp, nullptr, ds8);
  // dQ = dS K.
  const Descriptor& k = g.virtualTensor({c.b, c.hg, c.skv, c.d}, {c.k.b, c.k.h, c.k.s, 1}, c.fwd);
  g.reshape(*in.kt, k);
  const Dims q_dims{c.b, c.h, c.sq, c.d};
  fp8Matmul(g, ds8, k, q_dims, q_dims, descale_dp, *in.descale_k, scale_dq, dq, amax_dq, in.seq_q, in.seq_kv);
  // dK = dS^T Q (summed over the heads of a group).
  const Descriptor& ds8t = g.virtualTensor(transposed_dims, transposed_strides, c.bwd);
  g.reshape(ds8, ds8t);
  fp8Matmul(g, ds8t, *in.q, {c.b, c.h, c.skv, c.d}, {c.b, c.hg, c.skv, c.d}, descale_dp, *in.descale_q, scale_dk, dk,
            amax_dk, in.seq_kv, in.seq_q);
  return g.build(handle, false);
}

}  // namespace te::cudnn
