// The edge casts of fp8_dpa (fp8_attention.h): FP16/BF16/FP32 -> FP8 with the tensor's scale and
// its amax, and FP8 -> FP16/BF16/FP32 with the scale_inv. Scales are read on the device, so a
// recipe's state never needs a host round trip. One grid-stride loop per cast over 8-element vectors
// (where both buffers are aligned for them); the amax is reduced per block and then folded into the
// slot with an integer atomicMax on the float's bits, which orders non-negative floats (and NaN above inf, so a NaN input is reported, as TE's amax does).
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

// W consecutive elements moved with one vector access (W = 8: 16-byte loads of 16-bit inputs, 8-byte
// stores of FP8); the elements past the last whole vector go one at a time.
template <typename T, int W>
struct alignas(sizeof(T) * W) Vec {
  T v[W];
};

__device__ float maxKeepingNaN(float a, float b) { return (b > a || b != b) ? b : a; }

template <typename T, int W>
__global__ void quantizeKernel(const T* __restrict__ x, int64_t n, __nv_fp8_interpretation_t format,
                               __nv_fp8_storage_t* __restrict__ y, const float* __restrict__ scale_slot,
                               float* amax_slot) {
  const float scale = *scale_slot;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t vectors = n / W;
  float amax = 0.0f;
  for (int64_t i = first; i < vectors; i += stride) {
    const Vec<T, W> in = reinterpret_cast<const Vec<T, W>*>(x)[i];
    Vec<__nv_fp8_storage_t, W> out;
#pragma unroll
    for (int j = 0; j < W; ++j) {
      const float v = toFloat(in.v[j]);
      amax = maxKeepingNaN(amax, fabsf(v));
      out.v[j] = __nv_cvt_float_to_fp8(v * scale, __NV_SATFINITE, format);
    }
    reinterpret_cast<Vec<__nv_fp8_storage_t, W>*>(y)[i] = out;
  }
  for (int64_t i = vectors * W + first; i < n; i += stride) {
    const float v = toFloat(x[i]);
    amax = maxKeepingNaN(amax, fabsf(v));
    y[i] = __nv_cvt_float_to_fp8(v * scale, __NV_SATFINITE, format);
  }
  for (int offset = 16; offset > 0; offset /= 2) amax = maxKeepingNaN(amax, __shfl_down_sync(0xffffffffu, amax, offset));
  __shared__ float warp_amax[kThreads / 32];
  if (threadIdx.x % 32 == 0) warp_amax[threadIdx.x / 32] = amax;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / 32; ++w) amax = maxKeepingNaN(amax, warp_amax[w]);
    foldAmax(amax_slot, amax);
  }
}

template <typename T, int W>
__global__ void dequantizeKernel(const __nv_fp8_storage_t* __restrict__ x, int64_t n,
                                 __nv_fp8_interpretation_t format, T* __restrict__ y,
                                 const float* __restrict__ scale_inv_slot) {
  const float scale_inv = *scale_inv_slot;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t vectors = n / W;
  for (int64_t i = first; i < vectors; i += stride) {
    const Vec<__nv_fp8_storage_t, W> in = reinterpret_cast<const Vec<__nv_fp8_storage_t, W>*>(x)[i];
    Vec<T, W> out;
#pragma unroll
    for (int j = 0; j < W; ++j)
      out.v[j] = fromFloat<T>(__half2float(__half(__nv_cvt_fp8_to_halfraw(in.v[j], format))) * scale_inv);
    reinterpret_cast<Vec<T, W>*>(y)[i] = out;
  }
  for (int64_t i = vectors * W + first; i < n; i += stride)
    y[i] = fromFloat<T>(__half2float(__half(__nv_cvt_fp8_to_halfraw(x[i], format))) * scale_inv);
}

// Whether both buffers allow W-element vector accesses.
template <typename T>
bool vectorizable(const void* wide, const void* narrow) {
  return reinterpret_cast<uintptr_t>(wide) % (sizeof(T) * 8) == 0 && reinterpret_cast<uintptr_t>(narrow) % 8 == 0;
}

template <typename T>
void launchQuantize(const void* x, int64_t n, __nv_fp8_interpretation_t f, __nv_fp8_storage_t* y, const float* scale,
                    float* amax, int blocks, cudaStream_t s) {
  const auto* in = static_cast<const T*>(x);
  if (vectorizable<T>(x, y))
    quantizeKernel<T, 8><<<blocks, kThreads, 0, s>>>(in, n, f, y, scale, amax);
  else
    quantizeKernel<T, 1><<<blocks, kThreads, 0, s>>>(in, n, f, y, scale, amax);
}

template <typename T>
void launchDequantize(const __nv_fp8_storage_t* x, int64_t n, __nv_fp8_interpretation_t f, void* y,
                      const float* scale_inv, int blocks, cudaStream_t s) {
  auto* out = static_cast<T*>(y);
  if (vectorizable<T>(y, x))
    dequantizeKernel<T, 8><<<blocks, kThreads, 0, s>>>(x, n, f, out, scale_inv);
  else
    dequantizeKernel<T, 1><<<blocks, kThreads, 0, s>>>(x, n, f, out, scale_inv);
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
      launchQuantize<__half>(x, n, f, out, scale, amax, blocks, s);
    else if (src == TE_BF16)
      launchQuantize<__nv_bfloat16>(x, n, f, out, scale, amax, blocks, s);
    else
      launchQuantize<float>(x, n, f, out, scale, amax, blocks, s);
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
      launchDequantize<__half>(in, n, f, y, scale_inv, blocks, s);
    else if (dst == TE_BF16)
      launchDequantize<__nv_bfloat16>(in, n, f, y, scale_inv, blocks, s);
    else
      launchDequantize<float>(in, n, f, y, scale_inv, blocks, s);
    return launched("te_fp8_dequantize");
  });
}
