// A stand-in for libnccl.so.2 used only by te_nccl_loader_test: it exports the functions the loader
// binds, so that the dlopen/dlsym path and the status reporting can be tested on machines without
// NCCL. Its collectives do nothing and report ncclInvalidUsage; no result is ever faked as success.
#include <cstring>

#include "../nccl_abi.h"

using namespace te::nccl;

extern "C" {
Result ncclGetVersion(int* version) {
  *version = 22304;
  return kSuccess;
}
Result ncclGetUniqueId(UniqueId* id) {
  for (std::size_t i = 0; i < kUniqueIdBytes; i++) id->internal[i] = static_cast<char>(i);
  return kSuccess;
}
Result ncclCommInitRank(Comm*, int, UniqueId, int) { return kInvalidUsage; }
Result ncclCommDestroy(Comm) { return kSuccess; }
const char* ncclGetErrorString(Result r) { return r == kInvalidUsage ? "fake NCCL: invalid usage" : "fake NCCL: error"; }
Result ncclGroupStart() { return kSuccess; }
Result ncclGroupEnd() { return kSuccess; }
Result ncclSend(const void*, std::size_t, DataType, int, Comm, cudaStream_t) { return kInvalidUsage; }
Result ncclRecv(void*, std::size_t, DataType, int, Comm, cudaStream_t) { return kInvalidUsage; }
Result ncclAllGather(const void*, void*, std::size_t, DataType, Comm, cudaStream_t) { return kInvalidUsage; }
Result ncclAllReduce(const void*, void*, std::size_t, DataType, RedOp, Comm, cudaStream_t) { return kInvalidUsage; }
#ifndef FAKE_NCCL_WITHOUT_REDUCE_SCATTER
Result ncclReduceScatter(const void*, void*, std::size_t, DataType, RedOp, Comm, cudaStream_t) { return kInvalidUsage; }
#endif
}
