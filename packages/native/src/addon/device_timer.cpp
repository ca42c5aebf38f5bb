#include "device_timer.h"

#include <string>

#include "device_tensor.h"

namespace te_addon {

Napi::Function DeviceTimer::Define(Napi::Env env) {
  return DefineClass(env, "DeviceTimer",
                     {InstanceMethod("start", &DeviceTimer::Start), InstanceMethod("stop", &DeviceTimer::Stop),
                      InstanceMethod("elapsedMs", &DeviceTimer::ElapsedMs),
                      InstanceMethod("dispose", &DeviceTimer::Dispose)});
}

DeviceTimer::DeviceTimer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceTimer>(info) {
  Napi::Env env = info.Env();
  int device = 0;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsNumber()) {
      Napi::TypeError::New(env, "DeviceTimer(device?): device must be a number").ThrowAsJavaScriptException();
      return;
    }
    device = info[0].As<Napi::Number>().Int32Value();
  }
  te_status s = te_event_create(device, &start_);
  if (s == TE_OK) s = te_event_create(device, &stop_);
  if (s != TE_OK) {
    status_error(env, s, "DeviceTimer").ThrowAsJavaScriptException();
    Release();
  }
}

DeviceTimer::~DeviceTimer() { Release(); }

void DeviceTimer::Release() {
  te_event_destroy(start_);
  te_event_destroy(stop_);
  start_ = stop_ = nullptr;
}

te_event* DeviceTimer::live(Napi::Env env, te_event* e, const char* what) {
  if (e == nullptr) throw Napi::Error::New(env, std::string(what) + ": the DeviceTimer was disposed");
  return e;
}

Napi::Value DeviceTimer::Start(const Napi::CallbackInfo& info) {
  if (te_status s = te_event_record(live(info.Env(), start_, "start"))) throw status_error(info.Env(), s, "start");
  return info.Env().Undefined();
}

Napi::Value DeviceTimer::Stop(const Napi::CallbackInfo& info) {
  if (te_status s = te_event_record(live(info.Env(), stop_, "stop"))) throw status_error(info.Env(), s, "stop");
  return info.Env().Undefined();
}

Napi::Value DeviceTimer::ElapsedMs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  float ms = 0;
  if (te_status s = te_event_elapsed_ms(live(env, start_, "elapsedMs"), live(env, stop_, "elapsedMs"), &ms))
    throw status_error(env, s, "elapsedMs");
  return Napi::Number::New(env, ms);
}

Napi::Value DeviceTimer::Dispose(const Napi::CallbackInfo& info) {
  Release();
  return info.Env().Undefined();
}

}  // namespace te_addon
