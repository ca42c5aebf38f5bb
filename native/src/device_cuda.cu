// The device API over the CUDA runtime (linked statically, so the library loads without a GPU or
// driver: te_device_count() is then 0 and the other calls answer TE_ERR_NO_CUDA).
#include <cuda_runtime.h>

#include <cstring>
#include <string>

#include "status_internal.h"
#include "te/te_device.h"

namespace {
te_status cuda_fail(cudaError_t e, const char* what) {
  if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver)
    return te::fail(TE_ERR_NO_CUDA, std::string(what) + ": " + cudaGetErrorString(e));
  if (e == cudaErrorMemoryAllocation) return te::fail(TE_ERR_OUT_OF_MEMORY, std::string(what) + ": " + cudaGetErrorString(e));
  return te::fail(TE_ERR_CUDA, std::string(what) + ": " + cudaGetErrorString(e));
}

te_status use(int device) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    cudaGetLastError();
    return te::fail(TE_ERR_NO_CUDA, "no CUDA device is usable on this machine");
  }
  if (device < 0 || device >= n) return te::fail(TE_ERR_INVALID_ARGUMENT, "device: an index in [0, " + std::to_string(n) + ") expected");
  if (cudaError_t e = cudaSetDevice(device)) return cuda_fail(e, "cudaSetDevice");
  return TE_OK;
}
}  // namespace

extern "C" int te_cuda_compiled(void) { return 1; }

extern "C" int te_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

extern "C" te_status te_device_get_info(int device, te_device_info* info) {
  if (info == nullptr) return te::fail(TE_ERR_INVALID_ARGUMENT, "info: NULL");
  if (te_status s = use(device)) return s;
  cudaDeviceProp p;
  if (cudaError_t e = cudaGetDeviceProperties(&p, device)) return cuda_fail(e, "cudaGetDeviceProperties");
  std::memset(info, 0, sizeof *info);
  std::strncpy(info->name, p.name, sizeof info->name - 1);
  info->arch = p.major * 10 + p.minor;
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
    info->free_memory = free_b;
    info->total_memory = total_b;
  } else {
    cudaGetLastError();
    info->total_memory = p.totalGlobalMem;
  }
  return TE_OK;
}

extern "C" te_status te_device_alloc(int device, size_t bytes, void** ptr) {
  if (ptr == nullptr) return te::fail(TE_ERR_INVALID_ARGUMENT, "ptr: NULL");
  if (te_status s = use(device)) return s;
  if (cudaError_t e = cudaMalloc(ptr, bytes)) return cuda_fail(e, "cudaMalloc");
  return TE_OK;
}

extern "C" te_status te_device_free(int device, void* ptr) {
  if (te_status s = use(device)) return s;
  if (cudaError_t e = cudaFree(ptr)) return cuda_fail(e, "cudaFree");
  return TE_OK;
}

extern "C" te_status te_memcpy_h2d(int device, void* dst, const void* src, size_t bytes) {
  if (te_status s = use(device)) return s;
  if (cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice)) return cuda_fail(e, "cudaMemcpy h2d");
  return TE_OK;
}

extern "C" te_status te_memcpy_d2h(int device, void* dst, const void* src, size_t bytes) {
  if (te_status s = use(device)) return s;
  if (cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost)) return cuda_fail(e, "cudaMemcpy d2h");
  return TE_OK;
}

extern "C" te_status te_device_synchronize(int device) {
  if (te_status s = use(device)) return s;
  if (cudaError_t e = cudaDeviceSynchronize()) return cuda_fail(e, "cudaDeviceSynchronize");
  return TE_OK;
}
