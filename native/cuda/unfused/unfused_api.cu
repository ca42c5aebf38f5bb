// Launch sequence of cuda.unfused for each dtype, and its reasons.
#include <cstdio>
#include <cstring>
#include "unfused_api.h"
#include "unfused_kernels.cuh"

namespace te_cuda {
namespace {

// Score buffers past this size are refused rather than risking the device's memory.
constexpr size_t kMaxWorkspaceBytes = size_t(16) << 30;

UnfusedBuffers buffers_of(const AttentionArgs& a) {
  float* base = static_cast<float*>(a.workspace);
  const size_t n = size_t(a.b) * a.h * a.sq * a.skv;
  return {base, base + n, base + 2 * n, base + 3 * n};
}

template <typename T>
cudaError_t forward_t(const AttentionArgs& a, cudaStream_t s, bool write_lse) {
  const UnfusedBuffers buf = buffers_of(a);
  unfused_scores_kernel<T><<<dim3((a.skv + 127) / 128, a.sq, a.b * a.h), 128, 0, s>>>(a, buf);
  unfused_softmax_kernel<<<dim3(a.sq, a.b * a.h), 256, 0, s>>>(a, buf, write_lse);
  return cudaGetLastError();
}

template <typename T>
cudaError_t run_forward(const AttentionArgs& a, cudaStream_t s) {
  cudaError_t err = forward_t<T>(a, s, true);
  if (err != cudaSuccess) return err;
  unfused_pv_kernel<T><<<dim3(a.sq, a.b * a.h), 128, 0, s>>>(a, buffers_of(a));
  return cudaGetLastError();
}

template <typename T>
cudaError_t run_backward(const AttentionArgs& a, cudaStream_t s) {
  // P and Z are recomputed (the forward's buffers are not kept between calls).
  cudaError_t err = forward_t<T>(a, s, false);
  if (err != cudaSuccess) return err;
  const UnfusedBuffers buf = buffers_of(a);
  unfused_ds_kernel<T><<<dim3(a.sq, a.b * a.h), 256, 0, s>>>(a, buf);
  unfused_dq_kernel<T><<<dim3(a.sq, a.b * a.h), 128, 0, s>>>(a, buf);
  unfused_dkdv_kernel<T><<<dim3(a.skv, a.b * a.hkv), 128, 0, s>>>(a, buf);
  if (a.softmax == kLearnable && a.dsoftmax_offset) unfused_dsink_kernel<<<a.h, 256, 0, s>>>(a, buf);
  if (a.dbias)
    unfused_dbias_kernel<T><<<dim3((a.skv + 127) / 128, a.sq, a.dbias_b * a.dbias_h), 128, 0, s>>>(a, buf);
  return cudaGetLastError();
}

}  // namespace
}  // namespace te_cuda

using te_cuda::AttentionArgs;

extern "C" size_t te_cuda_unfused_workspace_bytes(const AttentionArgs* a) {
  return sizeof(float) * (3 * size_t(a->b) * a->h * a->sq * a->skv + size_t(a->b) * a->h * a->sq);
}

extern "C" int te_cuda_unfused_explain(const AttentionArgs* a, char* reason, size_t n) {
  const char* why = nullptr;
  char buf[200];
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) why = "no CUDA device";
  else if (a->elem != te_cuda::kF32 && a->elem != te_cuda::kF16 && a->elem != te_cuda::kBF16)
    why = "cuda.unfused stores fp32, fp16 or bf16";
  else if (a->hkv <= 0 || a->h % a->hkv != 0) why = "h must be a multiple of the number of kv heads";
  else if (te_cuda_unfused_workspace_bytes(a) > te_cuda::kMaxWorkspaceBytes) {
    snprintf(buf, sizeof buf, "cuda.unfused would need %.1f GiB of fp32 score buffers (limit 16 GiB)",
             double(te_cuda_unfused_workspace_bytes(a)) / double(1u << 30));
    why = buf;
  }
  if (!why) return 1;
  if (reason && n) {
    strncpy(reason, why, n - 1);
    reason[n - 1] = 0;
  }
  return 0;
}

extern "C" int te_cuda_unfused_forward(const AttentionArgs* a, void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (a->elem) {
    case te_cuda::kF32: return int(te_cuda::run_forward<float>(*a, s));
    case te_cuda::kF16: return int(te_cuda::run_forward<__half>(*a, s));
    case te_cuda::kBF16: return int(te_cuda::run_forward<__nv_bfloat16>(*a, s));
  }
  return int(cudaErrorInvalidValue);
}

extern "C" int te_cuda_unfused_backward(const AttentionArgs* a, void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (a->elem) {
    case te_cuda::kF32: return int(te_cuda::run_backward<float>(*a, s));
    case te_cuda::kF16: return int(te_cuda::run_backward<__half>(*a, s));
    case te_cuda::kBF16: return int(te_cuda::run_backward<__nv_bfloat16>(*a, s));
  }
  return int(cudaErrorInvalidValue);
}
