// Internal helpers for reporting errors through the C API.
#pragma once
#include <string>

#include "te/te_status.h"

namespace te {
// Records message as this thread's last error and returns s.
te_status fail(te_status s, const std::string& message);
void clear_error();

// Runs body, turning any C++ exception into a status: nothing throws across the C API.
template <typename F>
te_status guarded(F&& body) {
  try {
    clear_error();
    return body();
  } catch (const std::bad_alloc&) {
    return fail(TE_ERR_OUT_OF_MEMORY, "out of host memory");
  } catch (const std::exception& e) {
    return fail(TE_ERR_INTERNAL, e.what());
  } catch (...) {
    return fail(TE_ERR_INTERNAL, "unknown C++ exception");
  }
}
}  // namespace te
