// Device scratch kept between calls, one grow-only buffer per stream: a call then neither allocates nor
// frees (a cudaMallocAsync/cudaFreeAsync pair per call was measurable host time, and memory freed
// under the default pool's release threshold goes back to the driver at every synchronisation). A
// buffer is used only on its own stream, so stream order keeps calls apart. Shared by the CUDA families
// (cuda.flash's backward, cuda.cudnn's workspace_cache.h); each keeps one per thread and device.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <map>

namespace te::cuda_family {

class StreamWorkspace {
 public:
  StreamWorkspace() = default;
  StreamWorkspace(const StreamWorkspace&) = delete;
  StreamWorkspace& operator=(const StreamWorkspace&) = delete;
  ~StreamWorkspace() {
    for (auto& [stream, buffer] : buffers_) cudaFree(buffer.data);  // errors ignored: the context may be gone
  }

  // At least `bytes` of device memory for work queued on `stream` in *data; the CUDA error otherwise.
  cudaError_t get(cudaStream_t stream, size_t bytes, void** data) {
    Buffer& b = buffers_[stream];
    if (b.bytes >= bytes && b.data != nullptr) {
      *data = b.data;
      return cudaSuccess;
    }
    if (b.data != nullptr) cudaFreeAsync(b.data, stream), b.data = nullptr, b.bytes = 0;
    const size_t grown = bytes + bytes / 8;  // a little headroom for the next, slightly larger call
    const cudaError_t err = cudaMallocAsync(&b.data, grown > 0 ? grown : 256, stream);
    if (err != cudaSuccess) {
      cudaGetLastError();
      b.data = nullptr;
      *data = nullptr;
      return err;
    }
    b.bytes = grown;
    *data = b.data;
    return cudaSuccess;
  }

 private:
  struct Buffer {
    void* data = nullptr;
    size_t bytes = 0;
  };
  std::map<cudaStream_t, Buffer> buffers_;
};

}  // namespace te::cuda_family
