// The device API over the CUDA runtime (linked statically, so the library loads without a GPU or
// driver: te_device_count() is then 0 and the other calls answer TE_ERR_NO_CUDA). Device memory comes
// from a stream-ordered caching pool (see te_device.h).
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "device_blocks.h"
#include "status_internal.h"
#include "te/te_device.h"

namespace {
te_status cuda_fail(cudaError_t e, const char* what) {
  if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver)
    return te::fail(TE_ERR_NO_CUDA, std::string(what) + ": " + cudaGetErrorString(e));
  if (e == cudaErrorMemoryAllocation) return te::fail(TE_ERR_OUT_OF_MEMORY, std::string(what) + ": " + cudaGetErrorString(e));
  return te::fail(TE_ERR_CUDA, std::string(what) + ": " + cudaGetErrorString(e));
}

// Allocations, frees and memsets are ordered on the legacy default stream: the families run on the
// stream of the argument block, which the addon leaves NULL (legacy by default), and the legacy stream
// also waits for earlier work of every blocking stream, so a block freed here is never reused while a
// kernel of another blocking stream may still touch it.
const cudaStream_t kStream = cudaStreamLegacy;

constexpr int kMaxDevices = 64;

std::string gib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

// After a failed allocation: the pool may have mapped memory while trying and would keep it (its
// release threshold is "never"), so hand every unused block back first; then the driver's free
// memory and what te's allocations hold are what the caller needs to know.
te_status out_of_memory(int device, size_t bytes, cudaMemPool_t pool) {
  uint64_t in_use = 0;
  if (pool) {
    cudaMemPoolTrimTo(pool, 0);
    if (cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &in_use) != cudaSuccess) cudaGetLastError();
  }
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) cudaGetLastError();
  return te::fail(TE_ERR_OUT_OF_MEMORY, "CUDA out of memory on device " + std::to_string(device) + ": asked for " +
                                            std::to_string(bytes) + " bytes (" + gib(bytes) + "), " +
                                            std::to_string(free_b) + " bytes (" + gib(free_b) + ") free of " +
                                            gib(total_b) + ", " + gib(size_t(in_use)) + " held by te allocations");
}

// Makes `device` current for this thread. The device count is asked once per process (it does not change
// while a process runs), and cudaSetDevice is called only when another device is current: a call per
// allocation and free of each was measurable host time (benchmarks/results/host-path-h200).
te_status use(int device) {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  if (count == 0) return te::fail(TE_ERR_NO_CUDA, "no CUDA device is usable on this machine");
  if (device < 0 || device >= count)
    return te::fail(TE_ERR_INVALID_ARGUMENT, "device: an index in [0, " + std::to_string(count) + ") expected");
  int current = -1;
  if (cudaGetDevice(&current) != cudaSuccess) cudaGetLastError();
  if (current == device) return TE_OK;
  if (cudaError_t e = cudaSetDevice(device)) return cuda_fail(e, "cudaSetDevice");
  return TE_OK;
}

// The live blocks of te_device_alloc by start address (device_blocks.h).
class Blocks {
 public:
  void add(void* p, size_t bytes, int device) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    blocks_[uintptr_t(p)] = {bytes, device};
  }
  void remove(void* p) {
    std::unique_lock<std::shared_mutex> lock(mu_);
    blocks_.erase(uintptr_t(p));
  }
  int device_of(const void* p) const {
    const uintptr_t at = uintptr_t(p);
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = blocks_.upper_bound(at);
    if (it == blocks_.begin()) return -1;
    --it;
    return at < it->first + it->second.bytes ? it->second.device : -1;
  }

 private:
  struct Block {
    size_t bytes;
    int device;
  };
  mutable std::shared_mutex mu_;
  std::map<uintptr_t, Block> blocks_;
};

Blocks& blocks() {
  static Blocks* b = new Blocks();  // never destroyed: finalizers may free blocks during process exit
  return *b;
}

// The device's default memory pool with its release threshold raised to "never", so memory freed
// into it stays cached for the next allocation (the families' cudaMallocAsync workspaces share it).
// *pool is NULL where the device has no memory pools (plain cudaMalloc/cudaFree are used then).
te_status caching_pool(int device, cudaMemPool_t* pool) {
  static std::mutex mu;
  static bool ready[kMaxDevices] = {};
  static cudaMemPool_t pools[kMaxDevices] = {};
  if (device >= kMaxDevices) {
    *pool = nullptr;
    return TE_OK;
  }
  std::lock_guard<std::mutex> lock(mu);
  if (!ready[device]) {
    int supported = 0;
    if (cudaError_t e = cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, device))
      return cuda_fail(e, "cudaDeviceGetAttribute(MemoryPoolsSupported)");
    if (supported) {
      if (cudaError_t e = cudaDeviceGetDefaultMemPool(&pools[device], device)) return cuda_fail(e, "cudaDeviceGetDefaultMemPool");
      uint64_t keep_all = UINT64_MAX;
      if (cudaError_t e = cudaMemPoolSetAttribute(pools[device], cudaMemPoolAttrReleaseThreshold, &keep_all))
        return cuda_fail(e, "cudaMemPoolSetAttribute(ReleaseThreshold)");
    }
    ready[device] = true;
  }
  *pool = pools[device];
  return TE_OK;
}
}  // namespace

int te::block_device(const void* p) { return blocks().device_of(p); }

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
  *ptr = nullptr;
  if (te_status s = use(device)) return s;
  cudaMemPool_t pool = nullptr;
  if (te_status s = caching_pool(device, &pool)) return s;
  cudaError_t e = pool ? cudaMallocFromPoolAsync(ptr, bytes, pool, kStream) : cudaMalloc(ptr, bytes);
  if (e == cudaErrorMemoryAllocation && pool) {
    // The pool may hold the memory in cached free blocks: wait for pending frees, hand every cached
    // block back to the driver and try once more (what PyTorch's allocator does before giving up).
    cudaGetLastError();
    cudaDeviceSynchronize();
    cudaMemPoolTrimTo(pool, 0);
    e = cudaMallocFromPoolAsync(ptr, bytes, pool, kStream);
  }
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    *ptr = nullptr;
    return out_of_memory(device, bytes, pool);
  }
  if (e != cudaSuccess) return cuda_fail(e, "device allocation");
  blocks().add(*ptr, bytes, device);
  return TE_OK;
}

extern "C" te_status te_device_free(int device, void* ptr) {
  if (ptr == nullptr) return TE_OK;
  if (te_status s = use(device)) return s;
  cudaMemPool_t pool = nullptr;
  if (te_status s = caching_pool(device, &pool)) return s;
  blocks().remove(ptr);
  if (cudaError_t e = pool ? cudaFreeAsync(ptr, kStream) : cudaFree(ptr)) return cuda_fail(e, "device free");
  return TE_OK;
}

extern "C" te_status te_device_memset(int device, void* ptr, int value, size_t bytes) {
  if (ptr == nullptr && bytes > 0) return te::fail(TE_ERR_INVALID_ARGUMENT, "ptr: NULL");
  if (te_status s = use(device)) return s;
  if (cudaError_t e = cudaMemsetAsync(ptr, value, bytes, kStream)) return cuda_fail(e, "cudaMemsetAsync");
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

// A CUDA event with timing, recorded on the stream allocations and the families' default (NULL) stream
// use: the legacy default stream.
struct te_event {
  cudaEvent_t event = nullptr;
  int device = 0;
  bool recorded = false;
};

extern "C" te_status te_event_create(int device, te_event** event) {
  if (event == nullptr) return te::fail(TE_ERR_INVALID_ARGUMENT, "event: NULL");
  *event = nullptr;
  if (te_status s = use(device)) return s;
  cudaEvent_t e = nullptr;
  if (cudaError_t err = cudaEventCreate(&e)) return cuda_fail(err, "cudaEventCreate");
  *event = new te_event{e, device, false};
  return TE_OK;
}

extern "C" te_status te_event_record(te_event* event) {
  if (event == nullptr) return te::fail(TE_ERR_INVALID_ARGUMENT, "event: NULL");
  if (te_status s = use(event->device)) return s;
  if (cudaError_t e = cudaEventRecord(event->event, kStream)) return cuda_fail(e, "cudaEventRecord");
  event->recorded = true;
  return TE_OK;
}

extern "C" te_status te_event_elapsed_ms(const te_event* start, const te_event* end, float* ms) {
  if (start == nullptr || end == nullptr || ms == nullptr) return te::fail(TE_ERR_INVALID_ARGUMENT, "start, end, ms: not NULL");
  if (!start->recorded || !end->recorded) return te::fail(TE_ERR_INVALID_ARGUMENT, "elapsed time: both events must be recorded first");
  if (start->device != end->device)
    return te::fail(TE_ERR_INVALID_ARGUMENT, "elapsed time: the events are on devices " + std::to_string(start->device) +
                                                 " and " + std::to_string(end->device));
  const cudaError_t e = cudaEventElapsedTime(ms, start->event, end->event);
  if (e == cudaErrorNotReady) {
    cudaGetLastError();
    return te::fail(TE_ERR_INVALID_ARGUMENT, "elapsed time: the events have not completed yet (synchronize first)");
  }
  if (e != cudaSuccess) return cuda_fail(e, "cudaEventElapsedTime");
  return TE_OK;
}

extern "C" te_status te_event_destroy(te_event* event) {
  if (event == nullptr) return TE_OK;
  const cudaError_t e = cudaEventDestroy(event->event);
  delete event;
  if (e != cudaSuccess) return cuda_fail(e, "cudaEventDestroy");
  return TE_OK;
}
