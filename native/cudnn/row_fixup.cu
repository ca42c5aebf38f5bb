#include <cmath>

#include "row_fixup.h"

namespace te::cudnn {
namespace {

__global__ void lengthsKernel(const int32_t* cu, int b, int32_t full, int32_t* lengths) {
  const int e = blockIdx.x * blockDim.x + threadIdx.x;
  if (e < b) lengths[e] = cu != nullptr ? cu[e + 1] - cu[e] : full;
}

__device__ bool isEmpty(const EmptyRows& r, int e, int i) {
  const int self = r.cu_self ? r.cu_self[e + 1] - r.cu_self[e] : r.s;
  if (i >= self) return true;
  if (r.other_max == 0) return false;
  const int other = r.cu_other ? r.cu_other[e + 1] - r.cu_other[e] : r.other_max;
  const int diagonal = i + (r.bottom_right ? other - self : 0);
  const int lo = r.left >= 0 ? max(0, diagonal - r.left) : 0;
  const int hi = r.right >= 0 ? min(other, diagonal + r.right + 1) : other;
  return lo >= hi;
}

__global__ void raggedKernel(RaggedOffsets jobs, int b) {
  const int e = blockIdx.x * blockDim.x + threadIdx.x, j = blockIdx.y;
  if (e <= b) jobs.out[j][e] = int64_t(jobs.tokens[j][e]) * jobs.token_stride[j];
}

// One block per (query row, entry x head); threads over keys.
__global__ void alibiKernel(const float* slopes, int sq, int skv, int offset, float* out) {
  const int i = blockIdx.x, eh = blockIdx.y;
  const float slope = slopes[eh];
  float* row = out + (int64_t(eh) * sq + i) * skv;
  for (int j = threadIdx.x; j < skv; j += blockDim.x) row[j] = 0.0f - slope * float(abs(i - j + offset));
}

// One block per (row, entry); threads over heads x channels.
__global__ void clearKernel(uint16_t* data, int64_t sb, int64_t ss, int64_t sh, int h, int c, EmptyRows rows,
                            float* lse) {
  const int i = blockIdx.x, e = blockIdx.y;
  if (!isEmpty(rows, e, i)) return;
  for (int t = threadIdx.x; t < h * c; t += blockDim.x) {
    const int hh = t / c, ch = t % c;
    if (data != nullptr) data[e * sb + i * ss + hh * sh + ch] = 0;
    if (lse != nullptr && ch == 0) lse[(int64_t(e) * h + hh) * rows.s + i] = -INFINITY;
  }
}

}  // namespace

cudaError_t seqLengths(const int32_t* cu, int b, int32_t* lengths, cudaStream_t stream, int32_t full) {
  if (b == 0) return cudaSuccess;
  lengthsKernel<<<(b + 127) / 128, 128, 0, stream>>>(cu, b, full, lengths);
  return cudaGetLastError();
}

cudaError_t raggedOffsets(const RaggedOffsets& jobs, int b, cudaStream_t stream) {
  if (jobs.count == 0) return cudaSuccess;
  raggedKernel<<<dim3((b + 128) / 128, jobs.count), 128, 0, stream>>>(jobs, b);
  return cudaGetLastError();
}

cudaError_t alibiBias(const float* slopes, int b, int h, int sq, int skv, int offset, float* out, cudaStream_t stream) {
  if (b * h == 0 || sq == 0) return cudaSuccess;
  alibiKernel<<<dim3(sq, b * h), 128, 0, stream>>>(slopes, sq, skv, offset, out);
  return cudaGetLastError();
}

cudaError_t clearEmptyRows(void* data, int64_t sb, int64_t ss, int64_t sh, int b, int h, int c, const EmptyRows& rows,
                           float* lse, cudaStream_t stream) {
  if (b == 0 || rows.s == 0) return cudaSuccess;
  clearKernel<<<dim3(rows.s, b), 256, 0, stream>>>(static_cast<uint16_t*>(data), sb, ss, sh, h, c, rows, lse);
  return cudaGetLastError();
}

}  // namespace te::cudnn
