// DeviceTensor: JS object owning one CUDA allocation (te_device_alloc). dispose() frees it at once;
// the finalizer frees it when the object is collected without dispose().
#pragma once
#include <napi.h>

#include <cstddef>
#include <memory>

#include "external_memory.h"

namespace te_addon {

class DeviceTensor : public Napi::ObjectWrap<DeviceTensor> {
 public:
  static Napi::Function Define(Napi::Env env);
  // The DeviceTensor behind v, or nullptr when v is not one.
  static DeviceTensor* Unwrap(const Napi::Value& v);

  explicit DeviceTensor(const Napi::CallbackInfo& info);
  ~DeviceTensor() override;

  bool disposed() const { return ptr_ == nullptr; }
  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  Napi::Value Upload(const Napi::CallbackInfo& info);
  Napi::Value Download(const Napi::CallbackInfo& info);
  Napi::Value Zero(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value ByteLength(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  void Free();

  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  int device_ = 0;
  // Shared by the addon instance's tensors; held here so a finalizer that runs after the addon's
  // instance data is gone still has it.
  std::shared_ptr<ExternalMemoryReport> memory_;
};

// externalMemory() -> {liveBytes, reportedBytes}: the device bytes DeviceTensors hold and what V8 is
// told of them (external_memory.h).
Napi::Value ExternalMemory(const Napi::CallbackInfo& info);

// synchronize(device = 0) -> Promise<void>: waits on libuv's thread pool for the device's queued work.
Napi::Value Synchronize(const Napi::CallbackInfo& info);

// A JS Error with `code` (the te_status name) and te_last_error()'s message.
Napi::Error status_error(Napi::Env env, int status, const char* what);

}  // namespace te_addon
