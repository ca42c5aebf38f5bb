#include "external_memory.h"

namespace te_addon {

void ExternalMemoryReport::allocated(Napi::Env env, size_t bytes) {
  live_ += int64_t(bytes);
  reconcile(env);
}

void ExternalMemoryReport::released(Napi::Env env, size_t bytes) {
  live_ -= int64_t(bytes);
  reconcile(env);
}

void ExternalMemoryReport::reconcile(Napi::Env env) {
  if (live_ <= reported_ && live_ >= reported_ / 4) return;
  const int64_t capacity = 2 * live_;
  Napi::MemoryManagement::AdjustExternalMemory(env, capacity - reported_);
  reported_ = capacity;
}

}  // namespace te_addon
