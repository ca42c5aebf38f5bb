// The edge casts of fp8_dpa (fp8_attention.h): FP16/BF16/FP32 -> FP8 with the tensor's scale and
// its amax, and FP8 -> FP16/BF16/FP32 with the scale_inv. Scales are read on the device, so a
// recipe's state never needs a host round trip. One grid-stride loop per cast; the amax is reduced
// per block and then folded into the slot with an integer atomicMax on the float's bits, which
// orders non-negative floats (and NaN above inf, so a NaN input is reported, as TE's amax does).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <string>

#include "fp8_attention.h"
#include "status_internal.h"

namespace te::cudnn {
namespace {

constexpr int kThreads = 256;

__device__ float toFloat(float x) { return x; }
__device__ float toFloat(__half x) { return __half2float(x); }
__device__ float toFloat(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ T fromFloat(float x);
template <>
__device__ float fromFloat<float>(float x) { return x; }
template <>
__device__ __half fromFloat<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __nv_bfloat16 fromFloat<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

__device__ void foldAmax(float* slot, float block_amax) {
  atomicMax(reinterpret_cast<int*>(slot), __float_as_int(block_amax));
}

template <typename T>
__global__ void quantizeKernel(const T* __restrict__ x, int64_t n, __nv_fp8_interpretation_t format,
                               __nv_fp8_storage_t* __restrict__ y, const float* __restrict__ scale_slot,
                               float* amax_slot) {
  const float scale = *scale_slot;
  float amax = 0.0f;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = toFloat(x[i]);
    const float a = fabsf(v);
    amax = (a > amax || a != a) ? a : amax;  // keeps NaN
    y[i] = __nv_cvt_float_to_fp8(v * scale, __NV_SATFINITE, format);
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    const float other = __shfl_down_sync(0xffffffffu, amax, offset);
    amax = (other > amax || other != other) ? other : amax;
  }
  __shared__ float warp_amax[kThreads / 32];
  if (threadIdx.x % 32 == 0) warp_amax[threadIdx.x / 32] = amax;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / 32; ++w) amax = (warp_amax[w] > amax || warp_amax[w] != warp_amax[w]) ? warp_amax[w] : amax;
    foldAmax(amax_slot, amax);
  }
}

template <typename T>
__global__ void dequantizeKernel(const __nv_fp8_storage_t* __restrict__ x, int64_t n,
                                 __nv_fp8_interpretation_t format, T* __restrict__ y,
                                 const float* __restrict__ scale_inv_slot) {
  const float scale_inv = *scale_inv_slot;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = __half2float(__half(__nv_cvt_fp8_to_halfraw(x[i], format)));
    y[i] = fromFloat<T>(v * scale_inv);
  }
}

int blocksFor(int64_t n) {
  int device = 0, sms = 132;
  if (cudaGetDevice(&device) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int64_t needed = (n + kThreads - 1) / kThreads;
  return int(needed < int64_t(sms) * 8 ? (needed > 0 ? needed : 1) : int64_t(sms) * 8);
}

__nv_fp8_interpretation_t interpretationOf(te_fp8_format f) { return f == TE_FP8_E4M3 ? __NV_E4M3 : __NV_E5M2; }

te_status launched(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return fail(TE_ERR_CUDA, std::string(what) + ": " + cudaGetErrorString(err));
  return TE_OK;
}

std::string badCastArgs(const void* x, int64_t n, int format, const void* y, const float* meta, int t) {
  if (n < 0) return "n: a count >= 0 expected";
  if (n > 0 && (x == nullptr || y == nullptr)) return "x, y: device pointers expected";
  if (meta == nullptr) return "meta: a device block of TE_FP8_META_FLOATS floats expected";
  if (format != TE_FP8_E4M3 && format != TE_FP8_E5M2) return "format: TE_FP8_E4M3 or TE_FP8_E5M2 expected";
  if (t < 0 || t >= TE_FP8_TENSORS) return "t: a te_fp8_tensor expected";
  return "";
}

}  // namespace
}  // namespace te::cudnn

extern "C" te_status te_fp8_quantize(te_dtype src, const void* x, int64_t n, te_fp8_format dst, void* y,
                                     float* meta, te_fp8_tensor t, void* stream) {
  using namespace te::cudnn;
  return te::guarded([&] {
    const std::string bad = badCastArgs(x, n, dst, y, meta, t);
    if (!bad.empty()) return te::fail(TE_ERR_INVALID_ARGUMENT, "te_fp8_quantize " + bad);
    auto* out = static_cast<__nv_fp8_storage_t*>(y);
    const float* scale = meta + TE_FP8_SCALE(t);
    float* amax = meta + TE_FP8_AMAX(t);
    const auto s = static_cast<cudaStream_t>(stream);
    const int blocks = blocksFor(n);
    const auto f = interpretationOf(dst);
    if (src == TE_F16)
      quantizeKernel<<<blocks, kThreads, 0, s>>>(static_cast<const __half*>(x), n, f, out, scale, amax);
    else if (src == TE_BF16)
      quantizeKernel<<<blocks, kThreads, 0, s>>>(static_cast<const __nv_bfloat16*>(x), n, f, out, scale, amax);
    else
      quantizeKernel<<<blocks, kThreads, 0, s>>>(static_cast<const float*>(x), n, f, out, scale, amax);
    return launched("te_fp8_quantize");
  });
}

extern "C" te_status te_fp8_dequantize(te_fp8_format src, const void* x, int64_t n, te_dtype dst, void* y,
                                       const float* meta, te_fp8_tensor t, void* stream) {
  using namespace te::cudnn;
  return te::guarded([&] {
    const std::string bad = badCastArgs(x, n, src, y, meta, t);
    if (!bad.empty()) return te::fail(TE_ERR_INVALID_ARGUMENT, "te_fp8_dequantize " + bad);
    const auto* in = static_cast<const __nv_fp8_storage_t*>(x);
    const float* scale_inv = meta + TE_FP8_SCALE_INV(t);
    const auto s = static_cast<cudaStream_t>(stream);
    const int blocks = blocksFor(n);
    const auto f = interpretationOf(src);
    if (dst == TE_F16)
      dequantizeKernel<<<blocks, kThreads, 0, s>>>(in, n, f, static_cast<__half*>(y), scale_inv);
    else if (dst == TE_BF16)
      dequantizeKernel<<<blocks, kThreads, 0, s>>>(in, n, f, static_cast<__nv_bfloat16*>(y), scale_inv);
    else
      dequantizeKernel<<<blocks, kThreads, 0, s>>>(in, n, f, static_cast<float*>(y), scale_inv);
    return launched("te_fp8_dequantize");
  });
}
