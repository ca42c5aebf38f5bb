// The thread-local last error behind te_last_error().
#include "status_internal.h"

#include <string>

namespace te {
namespace {
thread_local std::string last_error;
}

te_status fail(te_status s, const std::string& message) {
  last_error = message;
  return s;
}

void clear_error() { last_error.clear(); }

}  // namespace te

extern "C" const char* te_last_error(void) { return te::last_error.c_str(); }

extern "C" const char* te_status_name(te_status s) {
  switch (s) {
    case TE_OK: return "TE_OK";
    case TE_ERR_INVALID_ARGUMENT: return "TE_ERR_INVALID_ARGUMENT";
    case TE_ERR_UNSUPPORTED: return "TE_ERR_UNSUPPORTED";
    case TE_ERR_UNKNOWN_BACKEND: return "TE_ERR_UNKNOWN_BACKEND";
    case TE_ERR_OUT_OF_MEMORY: return "TE_ERR_OUT_OF_MEMORY";
    case TE_ERR_NO_CUDA: return "TE_ERR_NO_CUDA";
    case TE_ERR_CUDA: return "TE_ERR_CUDA";
    case TE_ERR_INTERNAL: return "TE_ERR_INTERNAL";
  }
  return "TE_ERR_UNKNOWN";
}
