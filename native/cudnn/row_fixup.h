// Small kernels around the cuDNN graphs: per-entry lengths for cuDNN's seq_len tensors and ragged
// offsets for its thd tensors (both from cu_seqlens), ALiBi materialised as a bias, and the
// FORMAT.md values of rows no key reaches (past an entry's length, or before a bottom-right diagonal
// that starts past key 0): output rows zero and lse -inf, which cuDNN leaves unwritten or NaN.
#pragma once
#include <cuda_runtime.h>
#include <cstdint>

namespace te::cudnn {

// lengths[e] = cu[e + 1] - cu[e] for e < b; `full` for every e where cu is null (the side of a padded
// call without cu_seqlens: a kernel, so the host neither copies nor waits).
cudaError_t seqLengths(const int32_t* cu, int b, int32_t* lengths, cudaStream_t stream, int32_t full = 0);

// Ragged offsets of thd tensors: out[e] = tokens[e] * token_stride for e <= b, in elements (int64), where
// tokens is cu_seqlens_*_padded (or cu_seqlens): where entry e's rows start in the packed tensor.
struct RaggedOffsets {
  static constexpr int kMax = 8;
  const int32_t* tokens[kMax];
  int64_t token_stride[kMax];
  int64_t* out[kMax];
  int count = 0;
  void add(const int32_t* t, int64_t stride, int64_t* o) {
    tokens[count] = t, token_stride[count] = stride, out[count++] = o;
  }
};
cudaError_t raggedOffsets(const RaggedOffsets& jobs, int b, cudaStream_t stream);

// out[e, hh, i, j] = -slopes[e * h + hh] * |i - j + offset| as a contiguous fp32 [b, h, sq, skv] bias
// (ALiBi with per-entry slopes, which cuDNN's slope tensor cannot broadcast; TE's get_alibi likewise).
cudaError_t alibiBias(const float* slopes, int b, int h, int sq, int skv, int offset, float* out, cudaStream_t stream);

// Which rows of a [b, s, h, c] tensor hold no attention: row i of entry e is empty when
// i >= len(e) (cu_self, or s when null); for query-side tensors (cu_other given or other_max > 0)
// also when no key is allowed: the other side is empty, or the window [diagonal - left, diagonal +
// right] (diagonal = i, + lk - lq when bottom-right; -1 = unbounded, causal is right = 0) misses [0, lk).
struct EmptyRows {
  const int32_t* cu_self = nullptr;
  int s = 0;
  const int32_t* cu_other = nullptr;
  int other_max = 0;  // 0: a key-side tensor (no query rule)
  bool bottom_right = false;
  int left = -1, right = -1;
};

// Zeroes the empty rows of a 16-bit tensor with element strides (b, s, h) and c contiguous channels
// (unless data is null: thd rows past a length belong to the next entry), and sets lse[e, hh, i] = -inf
// for them when lse is not null ([b, h, s] fp32).
cudaError_t clearEmptyRows(void* data, int64_t sb, int64_t ss, int64_t sh, int b, int h, int c, const EmptyRows& rows,
                           float* lse, cudaStream_t stream);

}  // namespace te::cudnn
