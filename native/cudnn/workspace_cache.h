// Device scratch kept between calls, one grow-only buffer per stream: a call then neither allocates nor
// frees (cudaMallocAsync memory goes back to the driver at every synchronisation under the default pool's
// release threshold, so a per-call allocation of, say, backward's fp32 dQ accumulator is mapped anew
// each time). A buffer is used only on its own stream, so stream order keeps calls apart.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <string>

#include "cudnn_library.h"

namespace te::cudnn {

class WorkspaceCache {
 public:
  WorkspaceCache() = default;
  WorkspaceCache(const WorkspaceCache&) = delete;
  WorkspaceCache& operator=(const WorkspaceCache&) = delete;
  ~WorkspaceCache() {
    for (auto& [stream, buffer] : buffers_) cudaFree(buffer.data);  // errors ignored: the context may be gone
  }

  // At least `bytes` of device memory for work queued on `stream`.
  void* get(cudaStream_t stream, int64_t bytes) {
    Buffer& b = buffers_[stream];
    if (b.bytes >= bytes && b.data != nullptr) return b.data;
    if (b.data != nullptr) cudaFreeAsync(b.data, stream), b.data = nullptr, b.bytes = 0;
    const int64_t grown = bytes + bytes / 8;  // a little headroom for the next, slightly larger call
    const cudaError_t err = cudaMallocAsync(&b.data, size_t(grown), stream);
    if (err != cudaSuccess) {
      b.data = nullptr;
      throw Error(std::string("cuda.cudnn workspace: ") + cudaGetErrorString(err));
    }
    b.bytes = grown;
    return b.data;
  }

 private:
  struct Buffer {
    void* data = nullptr;
    int64_t bytes = 0;
  };
  std::map<cudaStream_t, Buffer> buffers_;
};

}  // namespace te::cudnn
