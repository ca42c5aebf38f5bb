#include "nccl_library.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

namespace te::nccl {
namespace {

struct LoadOutcome {
  Library library;
  bool ok = false;
  std::string why;
};

template <typename Fn>
bool bind(void* handle, const char* symbol, Fn* slot, std::string* why) {
  void* address = dlsym(handle, symbol);
  if (address == nullptr) {
    *why = libraryName() + " was loaded but has no " + symbol + " (NCCL too old?)";
    return false;
  }
  *slot = reinterpret_cast<Fn>(address);
  return true;
}

LoadOutcome load() {
  LoadOutcome out;
  const std::string name = libraryName();
  void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* message = dlerror();
    out.why = "NCCL not found: could not load " + name + " (" + (message ? message : "unknown error") +
              "); install NCCL 2.x or set TE_NCCL_LIBRARY to its path";
    return out;
  }
  Library& l = out.library;
  // ncclSend/ncclRecv appeared in NCCL 2.7, ncclBfloat16 in 2.10: every symbol here exists in 2.10+.
  out.ok = bind(handle, "ncclGetVersion", &l.getVersion, &out.why) &&
           bind(handle, "ncclGetUniqueId", &l.getUniqueId, &out.why) &&
           bind(handle, "ncclCommInitRank", &l.commInitRank, &out.why) &&
           bind(handle, "ncclCommDestroy", &l.commDestroy, &out.why) &&
           bind(handle, "ncclGetErrorString", &l.getErrorString, &out.why) &&
           bind(handle, "ncclGroupStart", &l.groupStart, &out.why) &&
           bind(handle, "ncclGroupEnd", &l.groupEnd, &out.why) && bind(handle, "ncclSend", &l.send, &out.why) &&
           bind(handle, "ncclRecv", &l.recv, &out.why) && bind(handle, "ncclAllGather", &l.allGather, &out.why) &&
           bind(handle, "ncclAllReduce", &l.allReduce, &out.why) &&
           bind(handle, "ncclReduceScatter", &l.reduceScatter, &out.why);
  // The handle stays open for the life of the process: communicators may outlive any caller.
  return out;
}

}  // namespace

std::string libraryName() {
  const char* chosen = std::getenv("TE_NCCL_LIBRARY");
  return (chosen != nullptr && *chosen != '\0') ? chosen : "libnccl.so.2";
}

const Library* loadLibrary(std::string* why) {
  static std::once_flag once;
  static LoadOutcome outcome;
  std::call_once(once, [] { outcome = load(); });
  if (!outcome.ok) {
    if (why != nullptr) *why = outcome.why;
    return nullptr;
  }
  return &outcome.library;
}

}  // namespace te::nccl
