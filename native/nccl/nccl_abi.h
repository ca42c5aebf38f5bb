// The part of NCCL's C ABI this project calls, declared here from NCCL's documentation (nccl.h is
// not needed to build: NCCL is loaded at run time, see nccl_library.h). Names carry a te_ prefix so
// that they never clash with a real nccl.h included elsewhere in a program.
#pragma once

#include <cstddef>

#include <cuda_runtime_api.h>

namespace te::nccl {

// ncclComm_t: an opaque handle.
struct OpaqueComm;
using Comm = OpaqueComm*;

// ncclUniqueId: 128 opaque bytes, made by one rank and handed to the others out of band.
constexpr std::size_t kUniqueIdBytes = 128;
struct UniqueId {
  char internal[kUniqueIdBytes];
};

// ncclResult_t (values fixed by the ABI).
enum Result : int {
  kSuccess = 0,
  kUnhandledCudaError = 1,
  kSystemError = 2,
  kInternalError = 3,
  kInvalidArgument = 4,
  kInvalidUsage = 5,
  kRemoteError = 6,
  kInProgress = 7,
};

// ncclDataType_t: the values used here.
enum DataType : int {
  kUint8 = 1,
  kFloat32 = 7,
  kFloat64 = 8,
};

// ncclRedOp_t: the value used here.
enum RedOp : int {
  kSum = 0,
};

using GetVersionFn = Result (*)(int* version);
using GetUniqueIdFn = Result (*)(UniqueId* id);
using CommInitRankFn = Result (*)(Comm* comm, int nranks, UniqueId id, int rank);
using CommDestroyFn = Result (*)(Comm comm);
using GetErrorStringFn = const char* (*)(Result result);
using GroupStartFn = Result (*)();
using GroupEndFn = Result (*)();
using SendFn = Result (*)(const void* sendbuff, std::size_t count, DataType type, int peer, Comm comm,
                          cudaStream_t stream);
using RecvFn = Result (*)(void* recvbuff, std::size_t count, DataType type, int peer, Comm comm,
                          cudaStream_t stream);
using AllGatherFn = Result (*)(const void* sendbuff, void* recvbuff, std::size_t sendcount, DataType type,
                               Comm comm, cudaStream_t stream);
using AllReduceFn = Result (*)(const void* sendbuff, void* recvbuff, std::size_t count, DataType type,
                               RedOp op, Comm comm, cudaStream_t stream);
using ReduceScatterFn = Result (*)(const void* sendbuff, void* recvbuff, std::size_t recvcount,
                                   DataType type, RedOp op, Comm comm, cudaStream_t stream);

}  // namespace te::nccl
