// The table of kernel families te_attn_* dispatch to by name.
#include <mutex>
#include <string>
#include <vector>

#include "status_internal.h"
#include "te/te_attention.h"

namespace te {
// The families compiled into this build (cpu always); defined next to their kernels.
std::vector<te_attn_family> builtin_families();

namespace {
struct Registry {
  std::mutex lock;
  std::vector<te_attn_family> families = builtin_families();
  std::string names;
};

Registry& registry() {
  static Registry r;
  return r;
}

te_status find(const char* name, te_attn_family* out) {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.lock);
  for (const auto& f : r.families) {
    if (name != nullptr && std::string(f.name) == name) {
      *out = f;
      return TE_OK;
    }
  }
  std::string have;
  for (const auto& f : r.families) have += (have.empty() ? "" : ", ") + std::string(f.name);
  return fail(TE_ERR_UNKNOWN_BACKEND,
              std::string("no attention backend '") + (name ? name : "(null)") + "' in this build (have: " + have + ")");
}
}  // namespace
}  // namespace te

extern "C" te_status te_attn_register(const te_attn_family* family) {
  return te::guarded([&] {
    if (family == nullptr || family->name == nullptr || !family->explain || !family->forward || !family->backward)
      return te::fail(TE_ERR_INVALID_ARGUMENT, "te_attn_register: a family with a name and three functions expected");
    te::Registry& r = te::registry();
    std::lock_guard<std::mutex> g(r.lock);
    for (auto& f : r.families) {
      if (std::string(f.name) == family->name) {
        f = *family;
        return TE_OK;
      }
    }
    r.families.push_back(*family);
    return TE_OK;
  });
}

extern "C" const char* te_attn_backends(void) {
  te::Registry& r = te::registry();
  std::lock_guard<std::mutex> g(r.lock);
  r.names.clear();
  for (const auto& f : r.families) r.names += (r.names.empty() ? "" : ",") + std::string(f.name);
  return r.names.c_str();
}

extern "C" te_status te_attn_explain(const char* backend, const te_attn_desc* desc, char* reason, size_t n) {
  return te::guarded([&] {
    te_attn_family f;
    if (te_status s = te::find(backend, &f)) return s;
    if (desc == nullptr) return te::fail(TE_ERR_INVALID_ARGUMENT, "desc: a te_attn_desc expected, got NULL");
    if (reason != nullptr && n > 0) reason[0] = '\0';
    return f.explain(desc, reason, n);
  });
}

extern "C" te_status te_attn_forward(const char* backend, const te_attn_desc* desc, const te_attn_fwd_args* args) {
  return te::guarded([&] {
    te_attn_family f;
    if (te_status s = te::find(backend, &f)) return s;
    if (desc == nullptr || args == nullptr) return te::fail(TE_ERR_INVALID_ARGUMENT, "desc and args must not be NULL");
    return f.forward(desc, args);
  });
}

extern "C" te_status te_attn_backward(const char* backend, const te_attn_desc* desc, const te_attn_bwd_args* args) {
  return te::guarded([&] {
    te_attn_family f;
    if (te_status s = te::find(backend, &f)) return s;
    if (desc == nullptr || args == nullptr) return te::fail(TE_ERR_INVALID_ARGUMENT, "desc and args must not be NULL");
    return f.backward(desc, args);
  });
}
