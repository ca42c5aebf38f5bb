// cuda.cudnn's device scratch kept between calls: the families' per-stream grow-only buffer
// (../cuda/family/stream_workspace.h) with its failure as a cuda.cudnn error.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "../cuda/family/stream_workspace.h"
#include "cudnn_library.h"

namespace te::cudnn {

class WorkspaceCache {
 public:
  // At least `bytes` of device memory for work queued on `stream`.
  void* get(cudaStream_t stream, int64_t bytes) {
    void* data = nullptr;
    const cudaError_t err = buffers_.get(stream, size_t(bytes), &data);
    if (err != cudaSuccess) throw Error(std::string("cuda.cudnn workspace: ") + cudaGetErrorString(err));
    return data;
  }

 private:
  cuda_family::StreamWorkspace buffers_;
};

}  // namespace te::cudnn
