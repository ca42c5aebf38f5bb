#include "te_nccl.h"

#include <cuda_runtime_api.h>

#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "nccl_library.h"

namespace {

thread_local std::string lastError;

te_nccl_status fail(te_nccl_status status, std::string message) {
  lastError = std::move(message);
  return status;
}

te_nccl_status succeed() {
  lastError.clear();
  return TE_NCCL_OK;
}

// The staging buffer grows to the largest message seen; NCCL works on device memory only.
struct DeviceBuffer {
  void* data = nullptr;
  size_t bytes = 0;
};

}  // namespace

struct te_nccl_comm {
  const te::nccl::Library* nccl = nullptr;
  te::nccl::Comm handle = nullptr;
  cudaStream_t stream = nullptr;
  int nranks = 0;
  int rank = 0;
  int device = 0;
  DeviceBuffer input;
  DeviceBuffer output;
};

namespace {

// Evaluates a CUDA runtime call; on failure records the sentence and returns from the caller.
#define TE_NCCL_CUDA(call, what)                                                                   \
  do {                                                                                             \
    cudaError_t error_ = (call);                                                                   \
    if (error_ != cudaSuccess) {                                                                   \
      return fail(TE_NCCL_CUDA_ERROR, std::string(what) + ": " + cudaGetErrorString(error_));      \
    }                                                                                              \
  } while (0)

te_nccl_status ncclStatus(const te::nccl::Library* nccl, te::nccl::Result result, const char* what) {
  if (result == te::nccl::kSuccess) return TE_NCCL_OK;
  return fail(TE_NCCL_LIBRARY_ERROR, std::string(what) + " failed: " + nccl->getErrorString(result));
}

#define TE_NCCL_CALL(comm, call, what)                                              \
  do {                                                                              \
    te_nccl_status status_ = ncclStatus((comm)->nccl, (call), (what));              \
    if (status_ != TE_NCCL_OK) return status_;                                      \
  } while (0)

te_nccl_status reserve(DeviceBuffer* buffer, size_t bytes) {
  if (bytes <= buffer->bytes) return TE_NCCL_OK;
  if (buffer->data != nullptr) TE_NCCL_CUDA(cudaFree(buffer->data), "cudaFree of the NCCL staging buffer");
  buffer->data = nullptr;
  buffer->bytes = 0;
  TE_NCCL_CUDA(cudaMalloc(&buffer->data, bytes), "cudaMalloc of the NCCL staging buffer");
  buffer->bytes = bytes;
  return TE_NCCL_OK;
}

te_nccl_status checkComm(const te_nccl_comm* comm) {
  if (comm == nullptr) return fail(TE_NCCL_INVALID_ARGUMENT, "comm: expected a communicator, got NULL");
  return TE_NCCL_OK;
}

te_nccl_status checkPeer(const te_nccl_comm* comm, int peer, const char* name) {
  if (peer < 0 || peer >= comm->nranks) {
    return fail(TE_NCCL_INVALID_ARGUMENT, std::string(name) + ": expected a rank in [0, " +
                                              std::to_string(comm->nranks) + "), got " + std::to_string(peer));
  }
  return TE_NCCL_OK;
}

size_t elementBytes(te_nccl_float type) { return type == TE_NCCL_FLOAT64 ? 8 : 4; }
te::nccl::DataType ncclType(te_nccl_float type) {
  return type == TE_NCCL_FLOAT64 ? te::nccl::kFloat64 : te::nccl::kFloat32;
}

// Copies `bytes` host bytes in, runs `body` (which enqueues NCCL work on the stream), copies
// `outBytes` device bytes back out and waits: one staged collective.
template <typename Body>
te_nccl_status staged(te_nccl_comm* comm, const void* in, size_t inBytes, void* out, size_t outBytes, Body body) {
  TE_NCCL_CUDA(cudaSetDevice(comm->device), "cudaSetDevice");
  if (te_nccl_status s = reserve(&comm->input, inBytes); s != TE_NCCL_OK) return s;
  if (te_nccl_status s = reserve(&comm->output, outBytes); s != TE_NCCL_OK) return s;
  if (inBytes > 0) {
    TE_NCCL_CUDA(cudaMemcpyAsync(comm->input.data, in, inBytes, cudaMemcpyHostToDevice, comm->stream),
                 "copying a message to the device");
  }
  if (te_nccl_status s = body(comm->input.data, comm->output.data); s != TE_NCCL_OK) return s;
  if (outBytes > 0) {
    TE_NCCL_CUDA(cudaMemcpyAsync(out, comm->output.data, outBytes, cudaMemcpyDeviceToHost, comm->stream),
                 "copying a message to the host");
  }
  TE_NCCL_CUDA(cudaStreamSynchronize(comm->stream), "waiting for an NCCL collective");
  return succeed();
}

}  // namespace

extern "C" {

const char* te_nccl_last_error(void) { return lastError.c_str(); }

te_nccl_status te_nccl_load(int* version) {
  std::string why;
  const te::nccl::Library* nccl = te::nccl::loadLibrary(&why);
  if (nccl == nullptr) return fail(TE_NCCL_NOT_FOUND, why);
  if (version != nullptr) {
    te::nccl::Result r = nccl->getVersion(version);
    if (r != te::nccl::kSuccess) return fail(TE_NCCL_LIBRARY_ERROR, std::string("ncclGetVersion failed: ") + nccl->getErrorString(r));
  }
  return succeed();
}

te_nccl_status te_nccl_unique_id(uint8_t id[TE_NCCL_UNIQUE_ID_BYTES]) {
  if (id == nullptr) return fail(TE_NCCL_INVALID_ARGUMENT, "id: expected a 128-byte buffer, got NULL");
  std::string why;
  const te::nccl::Library* nccl = te::nccl::loadLibrary(&why);
  if (nccl == nullptr) return fail(TE_NCCL_NOT_FOUND, why);
  te::nccl::UniqueId unique{};
  te::nccl::Result r = nccl->getUniqueId(&unique);
  if (r != te::nccl::kSuccess) return fail(TE_NCCL_LIBRARY_ERROR, std::string("ncclGetUniqueId failed: ") + nccl->getErrorString(r));
  std::memcpy(id, unique.internal, TE_NCCL_UNIQUE_ID_BYTES);
  return succeed();
}

te_nccl_status te_nccl_comm_create(const te_nccl_comm_params* params, te_nccl_comm** out) {
  if (params == nullptr || out == nullptr) return fail(TE_NCCL_INVALID_ARGUMENT, "params and out: expected non-NULL pointers");
  *out = nullptr;
  if (params->nranks < 1) return fail(TE_NCCL_INVALID_ARGUMENT, "nranks: expected at least 1, got " + std::to_string(params->nranks));
  if (params->rank < 0 || params->rank >= params->nranks) {
    return fail(TE_NCCL_INVALID_ARGUMENT, "rank: expected a rank in [0, " + std::to_string(params->nranks) + "), got " + std::to_string(params->rank));
  }
  if (params->unique_id == nullptr) return fail(TE_NCCL_INVALID_ARGUMENT, "unique_id: expected 128 bytes, got NULL");
  std::string why;
  const te::nccl::Library* nccl = te::nccl::loadLibrary(&why);
  if (nccl == nullptr) return fail(TE_NCCL_NOT_FOUND, why);

  auto* comm = new te_nccl_comm();
  comm->nccl = nccl;
  comm->nranks = params->nranks;
  comm->rank = params->rank;
  comm->device = params->device;
  auto init = [&]() -> te_nccl_status {
    TE_NCCL_CUDA(cudaSetDevice(comm->device), "cudaSetDevice(" + std::to_string(comm->device) + ")");
    TE_NCCL_CUDA(cudaStreamCreateWithFlags(&comm->stream, cudaStreamNonBlocking), "cudaStreamCreate");
    te::nccl::UniqueId unique{};
    std::memcpy(unique.internal, params->unique_id, TE_NCCL_UNIQUE_ID_BYTES);
    TE_NCCL_CALL(comm, nccl->commInitRank(&comm->handle, comm->nranks, unique, comm->rank), "ncclCommInitRank");
    return succeed();
  };
  te_nccl_status status = init();
  if (status != TE_NCCL_OK) {
    std::string message = lastError;
    te_nccl_comm_destroy(comm);
    return fail(status, message);
  }
  *out = comm;
  return succeed();
}

void te_nccl_comm_destroy(te_nccl_comm* comm) {
  if (comm == nullptr) return;
  cudaSetDevice(comm->device);
  if (comm->handle != nullptr) comm->nccl->commDestroy(comm->handle);
  if (comm->input.data != nullptr) cudaFree(comm->input.data);
  if (comm->output.data != nullptr) cudaFree(comm->output.data);
  if (comm->stream != nullptr) cudaStreamDestroy(comm->stream);
  delete comm;
}

te_nccl_status te_nccl_send_recv(te_nccl_comm* comm, const void* send, void* recv, size_t bytes, int to, int from) {
  if (te_nccl_status s = checkComm(comm); s != TE_NCCL_OK) return s;
  if (te_nccl_status s = checkPeer(comm, to, "to"); s != TE_NCCL_OK) return s;
  if (te_nccl_status s = checkPeer(comm, from, "from"); s != TE_NCCL_OK) return s;
  return staged(comm, send, bytes, recv, bytes, [&](void* in, void* out) -> te_nccl_status {
    // Grouped so that the ring's sends and receives cannot deadlock on each other.
    TE_NCCL_CALL(comm, comm->nccl->groupStart(), "ncclGroupStart");
    te::nccl::Result sent = comm->nccl->send(in, bytes, te::nccl::kUint8, to, comm->handle, comm->stream);
    te::nccl::Result received = comm->nccl->recv(out, bytes, te::nccl::kUint8, from, comm->handle, comm->stream);
    TE_NCCL_CALL(comm, comm->nccl->groupEnd(), "ncclGroupEnd");
    TE_NCCL_CALL(comm, sent, "ncclSend");
    TE_NCCL_CALL(comm, received, "ncclRecv");
    return TE_NCCL_OK;
  });
}

te_nccl_status te_nccl_all_gather(te_nccl_comm* comm, const void* send, void* recv, size_t bytes_per_rank) {
  if (te_nccl_status s = checkComm(comm); s != TE_NCCL_OK) return s;
  const size_t total = bytes_per_rank * static_cast<size_t>(comm->nranks);
  return staged(comm, send, bytes_per_rank, recv, total, [&](void* in, void* out) -> te_nccl_status {
    TE_NCCL_CALL(comm, comm->nccl->allGather(in, out, bytes_per_rank, te::nccl::kUint8, comm->handle, comm->stream),
                 "ncclAllGather");
    return TE_NCCL_OK;
  });
}

te_nccl_status te_nccl_all_to_all(te_nccl_comm* comm, const void* send, const size_t* send_bytes, void* recv,
                                  const size_t* recv_bytes) {
  if (te_nccl_status s = checkComm(comm); s != TE_NCCL_OK) return s;
  if (send_bytes == nullptr || recv_bytes == nullptr) {
    return fail(TE_NCCL_INVALID_ARGUMENT, "send_bytes and recv_bytes: expected nranks sizes each, got NULL");
  }
  const size_t n = static_cast<size_t>(comm->nranks);
  const size_t inTotal = std::accumulate(send_bytes, send_bytes + n, size_t{0});
  const size_t outTotal = std::accumulate(recv_bytes, recv_bytes + n, size_t{0});
  return staged(comm, send, inTotal, recv, outTotal, [&](void* in, void* out) -> te_nccl_status {
    TE_NCCL_CALL(comm, comm->nccl->groupStart(), "ncclGroupStart");
    size_t inAt = 0;
    size_t outAt = 0;
    te::nccl::Result worst = te::nccl::kSuccess;
    for (size_t r = 0; r < n; r++) {
      const int peer = static_cast<int>(r);
      te::nccl::Result s = comm->nccl->send(static_cast<char*>(in) + inAt, send_bytes[r], te::nccl::kUint8, peer,
                                            comm->handle, comm->stream);
      te::nccl::Result v = comm->nccl->recv(static_cast<char*>(out) + outAt, recv_bytes[r], te::nccl::kUint8, peer,
                                            comm->handle, comm->stream);
      if (worst == te::nccl::kSuccess) worst = s != te::nccl::kSuccess ? s : v;
      inAt += send_bytes[r];
      outAt += recv_bytes[r];
    }
    TE_NCCL_CALL(comm, comm->nccl->groupEnd(), "ncclGroupEnd");
    TE_NCCL_CALL(comm, worst, "ncclSend/ncclRecv of an all-to-all");
    return TE_NCCL_OK;
  });
}

te_nccl_status te_nccl_all_reduce_sum(te_nccl_comm* comm, const void* send, void* recv, size_t count,
                                      te_nccl_float type) {
  if (te_nccl_status s = checkComm(comm); s != TE_NCCL_OK) return s;
  const size_t bytes = count * elementBytes(type);
  return staged(comm, send, bytes, recv, bytes, [&](void* in, void* out) -> te_nccl_status {
    TE_NCCL_CALL(comm,
                 comm->nccl->allReduce(in, out, count, ncclType(type), te::nccl::kSum, comm->handle, comm->stream),
                 "ncclAllReduce");
    return TE_NCCL_OK;
  });
}

te_nccl_status te_nccl_reduce_scatter_sum(te_nccl_comm* comm, const void* send, void* recv, size_t recv_count,
                                          te_nccl_float type) {
  if (te_nccl_status s = checkComm(comm); s != TE_NCCL_OK) return s;
  const size_t outBytes = recv_count * elementBytes(type);
  const size_t inBytes = outBytes * static_cast<size_t>(comm->nranks);
  return staged(comm, send, inBytes, recv, outBytes, [&](void* in, void* out) -> te_nccl_status {
    TE_NCCL_CALL(comm,
                 comm->nccl->reduceScatter(in, out, recv_count, ncclType(type), te::nccl::kSum, comm->handle,
                                           comm->stream),
                 "ncclReduceScatter");
    return TE_NCCL_OK;
  });
}

}  // extern "C"
