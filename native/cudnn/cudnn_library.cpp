#include "cudnn_library.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

namespace te::cudnn {
namespace {

struct LoadOutcome {
  Library library;
  bool ok = false;
  std::string why;
};

template <typename Fn>
bool bind(void* handle, const char* symbol, Fn* slot, std::string* why) {
  *slot = reinterpret_cast<Fn>(dlsym(handle, symbol));
  if (*slot != nullptr) return true;
  *why = libraryName() + " was loaded but has no " + symbol + " (cuDNN 9 or newer is needed)";
  return false;
}

LoadOutcome load() {
  LoadOutcome out;
  const std::string name = libraryName();
  void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* message = dlerror();
    out.why = "cuDNN not found: could not load " + name + " (" + (message ? message : "unknown error") +
              "); install cuDNN 9 or set TE_CUDNN_LIBRARY to its path";
    return out;
  }
  Library& l = out.library;
  out.ok = bind(handle, "cudnnGetVersion", &l.getVersion, &out.why) &&
           bind(handle, "cudnnGetErrorString", &l.getErrorString, &out.why) &&
           bind(handle, "cudnnCreate", &l.create, &out.why) && bind(handle, "cudnnDestroy", &l.destroy, &out.why) &&
           bind(handle, "cudnnSetStream", &l.setStream, &out.why) &&
           bind(handle, "cudnnBackendCreateDescriptor", &l.createDescriptor, &out.why) &&
           bind(handle, "cudnnBackendDestroyDescriptor", &l.destroyDescriptor, &out.why) &&
           bind(handle, "cudnnBackendFinalize", &l.finalize, &out.why) &&
           bind(handle, "cudnnBackendSetAttribute", &l.setAttribute, &out.why) &&
           bind(handle, "cudnnBackendGetAttribute", &l.getAttribute, &out.why) &&
           bind(handle, "cudnnBackendExecute", &l.execute, &out.why);
  l.getLastErrorString = reinterpret_cast<abi::GetLastErrorStringFn>(dlsym(handle, "cudnnGetLastErrorString"));
  if (out.ok && l.getVersion() < 90000) {
    out.ok = false;
    out.why = name + " is cuDNN " + std::to_string(l.getVersion()) + "; cuda.cudnn needs cuDNN 9 or newer";
  }
  // The handle stays open for the life of the process: cached plans refer to its code.
  return out;
}

const LoadOutcome& outcome() {
  static std::once_flag once;
  static LoadOutcome loaded;
  std::call_once(once, [] { loaded = load(); });
  return loaded;
}

}  // namespace

std::string libraryName() {
  const char* chosen = std::getenv("TE_CUDNN_LIBRARY");
  return (chosen != nullptr && *chosen != '\0') ? chosen : "libcudnn.so.9";
}

const Library* loadLibrary(std::string* why) {
  const LoadOutcome& o = outcome();
  if (!o.ok) {
    if (why != nullptr) *why = o.why;
    return nullptr;
  }
  return &o.library;
}

int loadedVersion() {
  const LoadOutcome& o = outcome();
  return o.library.getVersion != nullptr ? int(o.library.getVersion()) : 0;
}

void check(const Library& lib, abi::Status status, const char* what) {
  if (status == abi::CUDNN_STATUS_SUCCESS) return;
  std::string message = std::string("cuDNN ") + what + ": " + lib.getErrorString(status);
  if (lib.getLastErrorString != nullptr) {
    char detail[1024] = {0};
    lib.getLastErrorString(detail, sizeof detail);
    if (detail[0] != '\0') message += std::string(" (") + detail + ")";
  }
  throw Error(message);
}

}  // namespace te::cudnn
