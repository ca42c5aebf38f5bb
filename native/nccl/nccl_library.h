// NCCL loaded at run time with dlopen, so that one binary serves machines with and without NCCL:
// a missing library is a status with a sentence, never a load failure of the whole addon.
#pragma once

#include <string>

#include "nccl_abi.h"

namespace te::nccl {

struct Library {
  GetVersionFn getVersion = nullptr;
  GetUniqueIdFn getUniqueId = nullptr;
  CommInitRankFn commInitRank = nullptr;
  CommDestroyFn commDestroy = nullptr;
  GetErrorStringFn getErrorString = nullptr;
  GroupStartFn groupStart = nullptr;
  GroupEndFn groupEnd = nullptr;
  SendFn send = nullptr;
  RecvFn recv = nullptr;
  AllGatherFn allGather = nullptr;
  AllReduceFn allReduce = nullptr;
  ReduceScatterFn reduceScatter = nullptr;
};

// The library name tried: $TE_NCCL_LIBRARY when set (a path or a soname), else "libnccl.so.2".
std::string libraryName();

// Loads NCCL once per process (thread-safe). Returns the function table, or nullptr with `why`
// set to a sentence naming the library and the loader's message (or the missing symbol).
const Library* loadLibrary(std::string* why);

}  // namespace te::nccl
