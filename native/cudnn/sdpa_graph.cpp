#include "sdpa_graph.h"

namespace te::cudnn {
namespace {

constexpr abi::DataType kF32 = abi::CUDNN_DATA_FLOAT;
constexpr abi::DataType kI32 = abi::CUDNN_DATA_INT32;
constexpr abi::DataType kBool = abi::CUDNN_DATA_BOOLEAN;

// The tensors both directions share.
struct Inputs {
  const Descriptor* q;
  const Descriptor* kt;  // K seen as [b, hg, d, skv]
  const Descriptor* k_ragged = nullptr;
  const Descriptor* v;
  const Descriptor* scale;
  const Descriptor* neg_inf;
  const Descriptor* seq_q = nullptr;
  const Descriptor* seq_kv = nullptr;
  const Descriptor* diag_shift = nullptr;
  const Descriptor* left_bound = nullptr;  // fp32 scalar, or int32 with per-entry lengths
  const Descriptor* right_bound = nullptr;  // int32 window_right > 0 (none for causal: right = 0)
  const Descriptor* bias = nullptr;
  const Descriptor* alibi_slopes = nullptr;
  const Descriptor* dropout_seed = nullptr;
  const Descriptor* dropout_offset = nullptr;
  const Descriptor* dropout_scale = nullptr;  // 1 / (1 - p), by value
  const Descriptor* sink = nullptr;
};

// The ragged offset tensor `uid` of a thd graph (nullptr otherwise).
const Descriptor* raggedOffsets(OperationGraph& g, const SdpaConfig& c, int64_t uid) {
  return c.ragged ? &g.tensor(uid, {c.b + 1, 1, 1, 1}, {1, 1, 1, 1}, abi::CUDNN_DATA_INT64) : nullptr;
}

// The backward graph reads V transposed ([b, hg, dv, skv]) only; the forward reads it as stored.
Inputs declareInputs(OperationGraph& g, const SdpaConfig& c, bool v_transposed) {
  Inputs in;
  const Dims scalar{1, 1, 1, 1};
  in.q = &g.tensor(kUidQ, {c.b, c.h, c.sq, c.d}, {c.q.b, c.q.h, c.q.s, 1}, c.io, false,
                   raggedOffsets(g, c, kUidRaggedQ));
  in.k_ragged = raggedOffsets(g, c, kUidRaggedK);
  in.kt = &g.tensor(kUidK, {c.b, c.hg, c.d, c.skv}, {c.k.b, c.k.h, 1, c.k.s}, c.io, false, in.k_ragged);
  const Descriptor* v_ragged = raggedOffsets(g, c, kUidRaggedV);
  in.v = v_transposed
             ? &g.tensor(kUidV, {c.b, c.hg, c.dv, c.skv}, {c.v.b, c.v.h, 1, c.v.s}, c.io, false, v_ragged)
             : &g.tensor(kUidV, {c.b, c.hg, c.skv, c.dv}, {c.v.b, c.v.h, c.v.s, 1}, c.io, false, v_ragged);
  in.scale = &g.tensor(kUidScale, scalar, scalar, kF32, true);
  in.neg_inf = &g.tensor(kUidNegInf, scalar, scalar, kF32, true);
  if (c.padded) {
    in.seq_q = &g.tensor(kUidSeqLenQ, {c.b, 1, 1, 1}, scalar, kI32);
    in.seq_kv = &g.tensor(kUidSeqLenKv, {c.b, 1, 1, 1}, scalar, kI32);
  } else if (c.needsDiagShift()) {
    in.diag_shift = &g.tensor(kUidDiagShift, scalar, scalar, kI32, true);
  }
  if (c.window_left >= 0) in.left_bound = &g.tensor(kUidLeftBound, scalar, scalar, c.padded ? kI32 : kF32, true);
  if (c.window_right > 0) in.right_bound = &g.tensor(kUidRightBound, scalar, scalar, kI32, true);
  if (c.bias)
    in.bias = &g.tensor(kUidBias, {c.bias_b, c.bias_h, c.sq, c.skv},
                        {c.bias_strides.b, c.bias_strides.h, c.bias_strides.s, 1}, c.bias_type);
  if (c.alibi) in.alibi_slopes = &g.tensor(kUidAlibiSlopes, {1, c.h, 1, 1}, {c.h, 1, 1, 1}, kF32);
  if (c.sink) in.sink = &g.tensor(kUidSink, {1, c.h, 1, 1}, {c.h, 1, 1, 1}, kF32);
  if (c.dropout > 0) {
    in.dropout_seed = &g.tensor(kUidDropoutSeed, scalar, scalar, abi::CUDNN_DATA_INT64);
    in.dropout_offset = &g.tensor(kUidDropoutOffset, scalar, scalar, abi::CUDNN_DATA_INT64);
    in.dropout_scale = &g.tensor(kUidDropoutScale, scalar, scalar, kF32, true);
  }
  return in;
}

// The dropout keep mask [b, h, sq, skv] (1 kept, 0 dropped); the forward and backward graphs draw the
// same one from the same seed and offset.
const Descriptor& dropoutMask(OperationGraph& g, const SdpaConfig& c, const Inputs& in) {
  const Descriptor& mask = g.virtualTensor({c.b, c.h, c.sq, c.skv}, kF32);
  g.bernoulli(1.0 - c.dropout, *in.dropout_seed, *in.dropout_offset, mask);
  return mask;
}

// P with dropout applied (P * mask / (1 - p)) as `type`; P itself without a mask.
const Descriptor& droppedProbabilities(OperationGraph& g, const SdpaConfig& c, const Inputs& in,
                                       const Descriptor* mask, const Descriptor& p, abi::DataType type) {
  if (mask == nullptr) return p;
  const Dims dims{c.b, c.h, c.sq, c.skv};
  const Descriptor& masked = g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_MUL, p, mask, nullptr, masked);
  const Descriptor& out = g.virtualTensor(dims, type);
  g.pointwise(abi::CUDNN_POINTWISE_MUL, masked, in.dropout_scale, nullptr, out);
  return out;
}

// ALiBi: adds -slope * |j - i - offset| (offset = lk - lq for a bottom-right diagonal). Under a causal
// mask every kept key has j - i - offset <= 0, so the term is slope * (j - i - offset): cuDNN's own
// ALiBi subgraph; other masks take the absolute value.
const Descriptor& addAlibi(OperationGraph& g, const SdpaConfig& c, const Inputs& in, const Descriptor& s) {
  const Dims dims{c.b, c.h, c.sq, c.skv};
  const Descriptor& row = g.virtualTensor(dims, kI32);
  const Descriptor& col = g.virtualTensor(dims, kI32);
  g.pointwise(abi::CUDNN_POINTWISE_GEN_INDEX, s, nullptr, nullptr, row, kI32, 2);
  g.pointwise(abi::CUDNN_POINTWISE_GEN_INDEX, s, nullptr, nullptr, col, kI32, 3);
  const Descriptor* dist = &g.virtualTensor(dims, kI32);
  g.pointwise(abi::CUDNN_POINTWISE_SUB, col, &row, nullptr, *dist, kI32);
  if (c.bottom_right) {  // full lengths only (cudnn_family refuses ALiBi with per-entry lengths)
    const Descriptor& shifted = g.virtualTensor(dims, kI32);
    g.pointwise(abi::CUDNN_POINTWISE_SUB, *dist, in.diag_shift, nullptr, shifted, kI32);
    dist = &shifted;
  }
  if (!c.causal) {
    const Descriptor& magnitude = g.virtualTensor(dims, kI32);
    g.pointwise(abi::CUDNN_POINTWISE_ABS, *dist, nullptr, nullptr, magnitude, kI32);
    dist = &magnitude;
  }
  const Descriptor& term = g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_MUL, *dist, in.alibi_slopes, nullptr, term);
  const Descriptor& out = g.virtualTensor(dims, kF32);
  g.pointwise(c.causal ? abi::CUDNN_POINTWISE_ADD : abi::CUDNN_POINTWISE_SUB, s, &term, nullptr, out);
  return out;
}

// The scaled logits with the bias and the ALiBi term, before any mask (cuDNN's order).
const Descriptor& scaledLogits(OperationGraph& g, const SdpaConfig& c, const Inputs& in) {
  const Dims dims{c.b, c.h, c.sq, c.skv};
  const Descriptor& qk = g.virtualTensor(dims, kF32);
  g.matmul(*in.q, *in.kt, qk, in.seq_q, in.seq_kv, nullptr);
  const Descriptor* s = &g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_MUL, qk, in.scale, nullptr, *s);
  if (c.bias) {
    const Descriptor& biased = g.virtualTensor(dims, kF32);
    g.pointwise(abi::CUDNN_POINTWISE_ADD, *s, in.bias, nullptr, biased);
    s = &biased;
  }
  if (c.alibi) s = &addAlibi(g, c, in, *s);
  return *s;
}

// Logits past an entry's lengths become -inf (rows past lq, columns past lk).
const Descriptor& maskPadding(OperationGraph& g, const SdpaConfig& c, const Inputs& in, const Descriptor& s) {
  return maskPastLengths(g, {c.b, c.h, c.sq, c.skv}, s, in.seq_q, in.seq_kv, in.neg_inf);
}

// Right bound: key j is kept for query row i when j <= i + right (+ lk - lq for the bottom-right
// diagonal); causal is right = 0.
const Descriptor& maskRightBound(OperationGraph& g, const SdpaConfig& c, const Inputs& in, const Descriptor& s) {
  const Dims dims{c.b, c.h, c.sq, c.skv};
  const Descriptor* row = &g.virtualTensor(dims, kI32);
  const Descriptor& col = g.virtualTensor(dims, kI32);
  g.pointwise(abi::CUDNN_POINTWISE_GEN_INDEX, s, nullptr, nullptr, *row, kF32, 2);
  g.pointwise(abi::CUDNN_POINTWISE_GEN_INDEX, s, nullptr, nullptr, col, kF32, 3);
  if (c.bottom_right && c.padded) {
    const Descriptor& plus_kv = g.virtualTensor(dims, kI32);
    g.pointwise(abi::CUDNN_POINTWISE_ADD, *row, in.seq_kv, nullptr, plus_kv, kI32);
    const Descriptor& diag = g.virtualTensor(dims, kI32);
    g.pointwise(abi::CUDNN_POINTWISE_SUB, plus_kv, in.seq_q, nullptr, diag, kI32);
    row = &diag;
  } else if (c.bottom_right) {
    const Descriptor& diag = g.virtualTensor(dims, kI32);
    g.pointwise(abi::CUDNN_POINTWISE_ADD, *row, in.diag_shift, nullptr, diag, kI32);
    row = &diag;
  }
  if (in.right_bound != nullptr) {
    const Descriptor& band = g.virtualTensor(dims, kI32);
    g.pointwise(abi::CUDNN_POINTWISE_ADD, *row, in.right_bound, nullptr, band, kI32);
    row = &band;
  }
  const Descriptor& keep = g.virtualTensor(dims, kBool);
  g.pointwise(abi::CUDNN_POINTWISE_CMP_GE, *row, &col, nullptr, keep, kBool);
  const Descriptor& out = g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_BINARY_SELECT, s, in.neg_inf, &keep, out);
  return out;
}

// Sliding window (left, 0): key j is kept when j + left_bound > i, with left_bound = window_left + 1
// (- lk + lq for the bottom-right diagonal: folded into the scalar without per-entry lengths).
const Descriptor& maskLeftBound(OperationGraph& g, const SdpaConfig& c, const Inputs& in, const Descriptor& s) {
  const Dims dims{c.b, c.h, c.sq, c.skv};
  const Descriptor& row = g.virtualTensor(dims, kI32);
  const Descriptor& col = g.virtualTensor(dims, kI32);
  g.pointwise(abi::CUDNN_POINTWISE_GEN_INDEX, s, nullptr, nullptr, row, kF32, 2);
  g.pointwise(abi::CUDNN_POINTWISE_GEN_INDEX, s, nullptr, nullptr, col, kF32, 3);
  const Descriptor* shifted = nullptr;
  if (c.padded) {
    const Descriptor& plus = g.virtualTensor(dims, kI32);
    g.pointwise(abi::CUDNN_POINTWISE_ADD, col, in.left_bound, nullptr, plus, kI32);
    shifted = &plus;
    if (c.bottom_right) {
      const Descriptor& minus_kv = g.virtualTensor(dims, kI32);
      g.pointwise(abi::CUDNN_POINTWISE_SUB, plus, in.seq_kv, nullptr, minus_kv, kI32);
      const Descriptor& plus_q = g.virtualTensor(dims, kI32);
      g.pointwise(abi::CUDNN_POINTWISE_ADD, minus_kv, in.seq_q, nullptr, plus_q, kI32);
      shifted = &plus_q;
    }
  } else {
    const Descriptor& plus = g.virtualTensor(dims, kF32);
    g.pointwise(abi::CUDNN_POINTWISE_ADD, col, in.left_bound, nullptr, plus, kF32);
    shifted = &plus;
  }
  const Descriptor& keep = g.virtualTensor(dims, kBool);
  g.pointwise(abi::CUDNN_POINTWISE_CMP_GT, *shifted, &row, nullptr, keep, kBool);
  const Descriptor& out = g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_BINARY_SELECT, s, in.neg_inf, &keep, out);
  return out;
}

// Scaled, masked logits [b, h, sq, skv] in fp32: (Q K^T) * scale (+ bias, ALiBi) with the padding
// and causal masks.
const Descriptor& maskedLogits(OperationGraph& g, const SdpaConfig& c, const Inputs& in) {
  const Descriptor* s = &scaledLogits(g, c, in);
  if (c.padded) s = &maskPadding(g, c, in, *s);
  if (c.rightBounded()) s = &maskRightBound(g, c, in, *s);
  if (c.window_left >= 0) s = &maskLeftBound(g, c, in, *s);
  return *s;
}

}  // namespace

std::vector<int64_t> SdpaConfig::key(bool backward) const {
  // The dropout keep probability is baked into the RNG descriptor: its key is p in 2^-32 steps.
  std::vector<int64_t> k{backward, device, io, b, h, hg, d, dv, sq, skv,
                         causal, bottom_right, window_left, window_right, padded, ragged,
                         bias, bias_type, bias_b, bias_h, bias_strides.b, bias_strides.h, bias_strides.s,
                         alibi, static_cast<int64_t>(dropout * 4294967296.0), sink};
  for (const BhsStrides* s : {&q, &this->k, &v, &o}) k.insert(k.end(), {s->b, s->h, s->s});
  if (backward) {
    k.insert(k.end(), {deterministic, dbias, dsink});
    for (const BhsStrides* s : {&d_o, &dq, &dk, &dv_out}) k.insert(k.end(), {s->b, s->h, s->s});
  }
  return k;
}

std::unique_ptr<ExecutionPlan> buildForwardPlan(const Library& lib, abi::Handle handle, const SdpaConfig& c) {
  OperationGraph g(lib);
  const Inputs in = declareInputs(g, c, false);
  const Descriptor& o = g.tensor(kUidO, {c.b, c.h, c.sq, c.dv}, {c.o.b, c.o.h, c.o.s, 1}, c.io, false,
                                 raggedOffsets(g, c, kUidRaggedO));
  const Dims row_dims{c.b, c.h, c.sq, 1};
  const Descriptor& stats = g.tensor(kUidStats, row_dims, {c.h * c.sq, c.sq, 1, 1}, kF32);
  const Descriptor& s = maskedLogits(g, c, in);
  // Softmax with its statistics: lse = max + log(sum(exp(s - max))), the sink logit (if any) being one
  // more term of the max and the sum.
  const Dims dims{c.b, c.h, c.sq, c.skv};
  const Descriptor* max = &g.virtualTensor(row_dims, kF32);
  g.reduction(abi::CUDNN_REDUCE_TENSOR_MAX, s, *max);
  if (c.sink) {
    const Descriptor& with_sink = g.virtualTensor(row_dims, kF32);
    g.pointwise(abi::CUDNN_POINTWISE_MAX, *max, in.sink, nullptr, with_sink);
    max = &with_sink;
  }
  const Descriptor& shifted = g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_SUB, s, max, nullptr, shifted);
  const Descriptor& e = g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_EXP, shifted, nullptr, nullptr, e);
  const Descriptor* sum = &g.virtualTensor(row_dims, kF32);
  g.reduction(abi::CUDNN_REDUCE_TENSOR_ADD, e, *sum);
  if (c.sink) {
    const Descriptor& sink_shifted = g.virtualTensor(row_dims, kF32);
    g.pointwise(abi::CUDNN_POINTWISE_SUB, *in.sink, max, nullptr, sink_shifted);
    const Descriptor& sink_exp = g.virtualTensor(row_dims, kF32);
    g.pointwise(abi::CUDNN_POINTWISE_EXP, sink_shifted, nullptr, nullptr, sink_exp);
    const Descriptor& total = g.virtualTensor(row_dims, kF32);
    g.pointwise(abi::CUDNN_POINTWISE_ADD, *sum, &sink_exp, nullptr, total);
    sum = &total;
  }
  const Descriptor& log_sum = g.virtualTensor(row_dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_LOG, *sum, nullptr, nullptr, log_sum);
  g.pointwise(abi::CUDNN_POINTWISE_ADD, *max, &log_sum, nullptr, stats);
  // The second matmul reads probabilities in the storage type (a requirement of the fused engines).
  const Descriptor* mask = c.dropout > 0 ? &dropoutMask(g, c, in) : nullptr;
  const Descriptor& p = g.virtualTensor(dims, mask != nullptr ? kF32 : c.io);
  g.pointwise(abi::CUDNN_POINTWISE_DIV, e, sum, nullptr, p);
  g.matmul(droppedProbabilities(g, c, in, mask, p, c.io), *in.v, o, in.seq_q, nullptr, in.seq_kv);
  return g.build(handle, false);
}

std::unique_ptr<ExecutionPlan> buildBackwardPlan(const Library& lib, abi::Handle handle, const SdpaConfig& c) {
  OperationGraph g(lib);
  const Inputs in = declareInputs(g, c, true);
  const Dims row_dims{c.b, c.h, c.sq, 1};
  const Dims dims{c.b, c.h, c.sq, c.skv};
  const Dims transposed_dims{c.b, c.h, c.skv, c.sq};
  const Dims transposed_strides{c.h * c.sq * c.skv, c.sq * c.skv, 1, c.skv};
  const Dims scalar{1, 1, 1, 1};
  const Descriptor& o = g.tensor(kUidO, {c.b, c.h, c.sq, c.dv}, {c.o.b, c.o.h, c.o.s, 1}, c.io, false,
                                 raggedOffsets(g, c, kUidRaggedO));
  const Descriptor& d_o = g.tensor(kUidDO, {c.b, c.h, c.sq, c.dv}, {c.d_o.b, c.d_o.h, c.d_o.s, 1}, c.io, false,
                                   raggedOffsets(g, c, kUidRaggedDO));
  const Descriptor& stats = g.tensor(kUidStats, row_dims, {c.h * c.sq, c.sq, 1, 1}, kF32);
  const Descriptor& keep_rate = g.tensor(kUidKeepRate, scalar, scalar, kF32, true);  // 1 - dropout
  const Descriptor& dq = g.tensor(kUidDQ, {c.b, c.h, c.sq, c.d}, {c.dq.b, c.dq.h, c.dq.s, 1}, c.io, false,
                                  raggedOffsets(g, c, kUidRaggedDQ));
  const Descriptor& dk = g.tensor(kUidDK, {c.b, c.hg, c.skv, c.d}, {c.dk.b, c.dk.h, c.dk.s, 1}, c.io, false,
                                  raggedOffsets(g, c, kUidRaggedDK));
  const Descriptor& dv = g.tensor(kUidDV, {c.b, c.hg, c.skv, c.dv}, {c.dv_out.b, c.dv_out.h, c.dv_out.s, 1}, c.io,
                                  false, raggedOffsets(g, c, kUidRaggedDV));
  // Row sums of dO * O (the softmax backward's correction term) times 1 - dropout (dS is scaled by
  // 1 / (1 - dropout) after it), kept in fp32 scratch.
  const Descriptor& do_o = g.virtualTensor({c.b, c.h, c.sq, c.dv}, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_MUL, d_o, &o, nullptr, do_o);
  const Descriptor& row_sum = g.virtualTensor(row_dims, kF32);
  g.reduction(abi::CUDNN_REDUCE_TENSOR_ADD, do_o, row_sum);
  const Descriptor& softmax_sum = g.tensor(kUidSoftmaxSum, row_dims, {c.h * c.sq, c.sq, 1, 1}, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_MUL, row_sum, &keep_rate, nullptr, softmax_sum);
  if (c.dsink) {
    // The sink's gradient in cuDNN's form: the sum over entries and rows of exp(sink - lse) * rowsum(dO * O).
    const Descriptor& sink_centered = g.virtualTensor(row_dims, kF32);
    g.pointwise(abi::CUDNN_POINTWISE_SUB, *in.sink, &stats, nullptr, sink_centered);
    const Descriptor& sink_p = g.virtualTensor(row_dims, kF32);
    g.pointwise(abi::CUDNN_POINTWISE_EXP, sink_centered, nullptr, nullptr, sink_p);
    const Descriptor& per_row = g.virtualTensor(row_dims, kF32);
    g.pointwise(abi::CUDNN_POINTWISE_MUL, sink_p, &row_sum, nullptr, per_row);
    const Descriptor& dsink = g.tensor(kUidDSink, {1, c.h, 1, 1}, {c.h, 1, 1, 1}, kF32);
    g.reduction(abi::CUDNN_REDUCE_TENSOR_ADD, per_row, dsink);
  }
  const Descriptor* mask = c.dropout > 0 ? &dropoutMask(g, c, in) : nullptr;
  // Probabilities recomputed from the forward's statistics: P = exp(s - lse).
  const Descriptor& s = g.virtualTensor(dims, kF32);
  {
    const Descriptor* x = &scaledLogits(g, c, in);
    if (c.padded) x = &maskPadding(g, c, in, *x);
    const Descriptor& centered = g.virtualTensor(dims, kF32);
    g.pointwise(abi::CUDNN_POINTWISE_SUB, *x, &stats, nullptr, centered);
    const Descriptor* y = &centered;
    if (c.rightBounded()) y = &maskRightBound(g, c, in, *y);
    if (c.window_left >= 0) y = &maskLeftBound(g, c, in, *y);
    g.pointwise(abi::CUDNN_POINTWISE_EXP, *y, nullptr, nullptr, s);
  }
  const Descriptor& p = s;
  const bool grouped = c.hg != c.h;
  // dV = P^T dO with P as the forward applied it (dropped), summed over the heads of a group.
  {
    const Descriptor& pt = g.virtualTensor(transposed_dims, transposed_strides, c.io);
    g.reshape(droppedProbabilities(g, c, in, mask, p, kF32), pt);
    if (!grouped) {
      g.matmul(pt, d_o, dv, in.seq_kv, nullptr, in.seq_q);
    } else {
      const Descriptor& full = g.virtualTensor({c.b, c.h, c.skv, c.dv}, c.io);
      g.matmul(pt, d_o, full, in.seq_kv, nullptr, in.seq_q);
      g.reduction(abi::CUDNN_REDUCE_TENSOR_ADD, full, dv);
    }
  }
  // dS = P * (dO V^T [* mask] - softmax_sum) [/ (1 - dropout)] * scale.
  const Descriptor* dp = &g.virtualTensor(dims, kF32);
  g.matmul(d_o, *in.v, *dp, in.seq_q, in.seq_kv, nullptr);
  if (mask != nullptr) {
    const Descriptor& kept = g.virtualTensor(dims, kF32);
    g.pointwise(abi::CUDNN_POINTWISE_MUL, *dp, mask, nullptr, kept);
    dp = &kept;
  }
  const Descriptor& dp_centered = g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_SUB, *dp, &softmax_sum, nullptr, dp_centered);
  const Descriptor* dp_p = &g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_MUL, dp_centered, &p, nullptr, *dp_p);
  if (mask != nullptr) {
    const Descriptor& rescaled = g.virtualTensor(dims, kF32);
    g.pointwise(abi::CUDNN_POINTWISE_MUL, *dp_p, in.dropout_scale, nullptr, rescaled);
    dp_p = &rescaled;
  }
  if (c.dbias) {
    // dBias: dS before the scale (the gradient of the post-scale logits), summed over broadcast dims.
    const Descriptor& dbias = g.tensor(kUidDBias, {c.bias_b, c.bias_h, c.sq, c.skv},
                                       {c.bias_h * c.sq * c.skv, c.sq * c.skv, c.skv, 1}, c.bias_type);
    g.reduction(abi::CUDNN_REDUCE_TENSOR_ADD, *dp_p, dbias);
  }
  const Descriptor& ds = g.virtualTensor(dims, kF32);
  g.pointwise(abi::CUDNN_POINTWISE_MUL, *dp_p, in.scale, nullptr, ds);
  // dK = dS^T Q (summed over the heads of a group).
  {
    const Descriptor& dst = g.virtualTensor(transposed_dims, transposed_strides, c.io);
    g.reshape(ds, dst);
    if (!grouped) {
      g.matmul(dst, *in.q, dk, in.seq_kv, nullptr, in.seq_q);
    } else {
      const Descriptor& full = g.virtualTensor({c.b, c.h, c.skv, c.d}, c.io);
      g.matmul(dst, *in.q, full, in.seq_kv, nullptr, in.seq_q);
      g.reduction(abi::CUDNN_REDUCE_TENSOR_ADD, full, dk);
    }
  }
  // dQ = dS K, through an fp32 accumulator unless a deterministic engine or dBias is asked for.
  const Descriptor& k = g.virtualTensor({c.b, c.hg, c.skv, c.d}, {c.k.b, c.k.h, c.k.s, 1}, c.io, in.k_ragged);
  g.reshape(*in.kt, k);
  if (c.dqDirect()) {
    g.matmul(ds, k, dq, in.seq_q, nullptr, in.seq_kv);
  } else {
    const Descriptor& accum =
        g.tensor(kUidDQAccum, {c.b, c.h, c.sq, c.d}, {c.h * c.sq * c.d, c.sq * c.d, c.d, 1}, kF32);
    g.matmul(ds, k, accum, in.seq_q, nullptr, in.seq_kv);
    g.pointwise(abi::CUDNN_POINTWISE_IDENTITY, accum, nullptr, nullptr, dq);
  }
  return g.build(handle, c.deterministic);
}

}  // namespace te::cudnn
