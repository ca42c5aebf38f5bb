// DeviceTimer: two CUDA timing events on the device's default stream (te_event_* in te_device.h), for
// timing queued work as PyTorch's benchmarks do (torch.cuda.Event around the call): start() and stop()
// record, and after the device has finished (synchronize), elapsedMs() is the device time between them.
#pragma once
#include <napi.h>

#include "te/te_device.h"

namespace te_addon {

class DeviceTimer : public Napi::ObjectWrap<DeviceTimer> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new DeviceTimer(device = 0)
  explicit DeviceTimer(const Napi::CallbackInfo& info);
  ~DeviceTimer() override;

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value ElapsedMs(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  void Release();
  te_event* live(Napi::Env env, te_event* e, const char* what);

  te_event* start_ = nullptr;
  te_event* stop_ = nullptr;
};

}  // namespace te_addon
