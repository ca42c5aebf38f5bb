// te_native.node: the C API to JS. forward/backward run on libuv's thread pool (AsyncWorker) and
// resolve a promise: the CPU family computes there. enqueueForward/enqueueBackward call the family on
// the JS thread and return when it has returned: for the CUDA families that is once the block is
// checked and the kernels are queued on the device, which takes microseconds, less than a round trip
// through the thread pool. Failures become JS errors with `code` = the te_status name.
#include <napi.h>

#include <memory>
#include <string>

#include "device_tensor.h"
#include "device_timer.h"
#include "fp8_binding.h"
#include "marshal.h"
#include "te/te_attention.h"
#include "te/te_device.h"

namespace te_addon {
namespace {

Napi::Error marshal_error(Napi::Env env, const MarshalError& e) {
  Napi::Error err = Napi::TypeError::New(env, e.field + ": expected " + e.expected);
  err.Set("code", Napi::String::New(env, "TE_ERR_INVALID_ARGUMENT"));
  err.Set("argument", Napi::String::New(env, e.field));
  return err;
}

std::string string_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(what) + ": a string expected");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Object object_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsObject()) throw Napi::TypeError::New(info.Env(), std::string(what) + ": an object expected");
  return info[i].As<Napi::Object>();
}

// The error of a failed forward/backward: "forward: <te_last_error>" with code and status.
Napi::Error call_error(Napi::Env env, bool backward, te_status status, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, std::string(backward ? "backward" : "forward") + ": " + message);
  e.Set("code", Napi::String::New(env, te_status_name(status)));
  e.Set("status", Napi::Number::New(env, status));
  return e;
}

class AttentionWorker : public Napi::AsyncWorker {
 public:
  AttentionWorker(Napi::Env env, std::string backend, te_attn_desc desc, std::unique_ptr<Keepalive> keep)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), backend_(std::move(backend)),
        desc_(desc), keep_(std::move(keep)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  te_attn_fwd_args fwd{};
  te_attn_bwd_args bwd{};
  bool is_backward = false;

 protected:
  void Execute() override {
    status_ = is_backward ? te_attn_backward(backend_.c_str(), &desc_, &bwd) : te_attn_forward(backend_.c_str(), &desc_, &fwd);
    if (status_ != TE_OK) message_ = te_last_error();
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (status_ == TE_OK) {
      deferred_.Resolve(env.Undefined());
      return;
    }
    deferred_.Reject(call_error(env, is_backward, status_, message_).Value());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string backend_;
  te_attn_desc desc_;
  std::unique_ptr<Keepalive> keep_;
  te_status status_ = TE_OK;
  std::string message_;
};

// explain(backend, desc) -> reason string ("" when it can run)
Napi::Value Explain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string backend = string_arg(info, 0, "explain(backend, desc)");
  te_attn_desc d;
  try {
    d = read_desc(object_arg(info, 1, "explain(backend, desc)"));
  } catch (const MarshalError& e) {
    throw marshal_error(env, e);
  }
  char reason[512];
  te_status s = te_attn_explain(backend.c_str(), &d, reason, sizeof reason);
  if (s == TE_OK) return Napi::String::New(env, "");
  if (s == TE_ERR_UNSUPPORTED) return Napi::String::New(env, reason);
  throw status_error(env, s, "explain");
}

Napi::Value Run(const Napi::CallbackInfo& info, bool backward) {
  Napi::Env env = info.Env();
  const char* sig = backward ? "backward(backend, desc, args)" : "forward(backend, desc, args)";
  std::string backend = string_arg(info, 0, sig);
  auto keep = std::make_unique<Keepalive>();
  te_attn_desc d;
  te_attn_fwd_args fwd{};
  te_attn_bwd_args bwd{};
  try {
    d = read_desc(object_arg(info, 1, sig));
    if (backward) bwd = read_bwd_args(object_arg(info, 2, sig), d, *keep);
    else fwd = read_fwd_args(object_arg(info, 2, sig), d, *keep);
  } catch (const MarshalError& e) {
    throw marshal_error(env, e);
  }
  auto* worker = new AttentionWorker(env, std::move(backend), d, std::move(keep));
  worker->fwd = fwd;
  worker->bwd = bwd;
  worker->is_backward = backward;
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

// enqueueForward/enqueueBackward(backend, desc, args) -> undefined, on the calling thread (see the top).
Napi::Value Enqueue(const Napi::CallbackInfo& info, bool backward) {
  Napi::Env env = info.Env();
  const char* sig = backward ? "enqueueBackward(backend, desc, args)" : "enqueueForward(backend, desc, args)";
  const std::string backend = string_arg(info, 0, sig);
  Keepalive keep(false);
  te_attn_desc d;
  te_attn_fwd_args fwd{};
  te_attn_bwd_args bwd{};
  try {
    d = read_desc(object_arg(info, 1, sig));
    if (backward) bwd = read_bwd_args(object_arg(info, 2, sig), d, keep);
    else fwd = read_fwd_args(object_arg(info, 2, sig), d, keep);
  } catch (const MarshalError& e) {
    throw marshal_error(env, e);
  }
  const te_status s = backward ? te_attn_backward(backend.c_str(), &d, &bwd) : te_attn_forward(backend.c_str(), &d, &fwd);
  if (s != TE_OK) throw call_error(env, backward, s, te_last_error());
  return env.Undefined();
}

Napi::Value Forward(const Napi::CallbackInfo& info) { return Run(info, false); }
Napi::Value Backward(const Napi::CallbackInfo& info) { return Run(info, true); }
Napi::Value EnqueueForward(const Napi::CallbackInfo& info) { return Enqueue(info, false); }
Napi::Value EnqueueBackward(const Napi::CallbackInfo& info) { return Enqueue(info, true); }

Napi::Value Backends(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), te_attn_backends()); }

// cudnnGetVersion() of the cuDNN that cuda.cudnn loads (0 when it cannot be loaded). The symbol exists
// only in CUDA builds (native/cudnn/cudnn_family.cu), hence weak: CPU builds answer 0.
extern "C" int te_cudnn_version(void) __attribute__((weak));
Napi::Value CudnnVersion(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), te_cudnn_version != nullptr ? te_cudnn_version() : 0);
}

Napi::Value DeviceInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("cudaCompiled", Napi::Boolean::New(env, te_cuda_compiled() != 0));
  const int n = te_device_count();
  Napi::Array devices = Napi::Array::New(env);
  for (int i = 0; i < n; ++i) {
    te_device_info di{};
    if (te_device_get_info(i, &di) != TE_OK) continue;
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", i);
    o.Set("name", Napi::String::New(env, di.name));
    o.Set("arch", di.arch);
    o.Set("totalMemory", double(di.total_memory));
    o.Set("freeMemory", double(di.free_memory));
    devices.Set(uint32_t(devices.Length()), o);
  }
  out.Set("devices", devices);
  return out;
}

// philox(counter: Uint32Array(4), key: Uint32Array(2)) -> Uint32Array(4), for agreement tests.
Napi::Value Philox(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsTypedArray())
    throw Napi::TypeError::New(env, "philox(counter: Uint32Array(4), key: Uint32Array(2))");
  Napi::Uint32Array c = info[0].As<Napi::Uint32Array>(), k = info[1].As<Napi::Uint32Array>();
  if (c.TypedArrayType() != napi_uint32_array || k.TypedArrayType() != napi_uint32_array || c.ElementLength() < 4 || k.ElementLength() < 2)
    throw Napi::TypeError::New(env, "philox(counter: Uint32Array(4), key: Uint32Array(2))");
  Napi::Uint32Array out = Napi::Uint32Array::New(env, 4);
  te_philox4x32_10(c.Data(), k.Data(), out.Data());
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("explain", Napi::Function::New(env, Explain));
  exports.Set("forward", Napi::Function::New(env, Forward));
  exports.Set("backward", Napi::Function::New(env, Backward));
  exports.Set("enqueueForward", Napi::Function::New(env, EnqueueForward));
  exports.Set("enqueueBackward", Napi::Function::New(env, EnqueueBackward));
  exports.Set("backends", Napi::Function::New(env, Backends));
  exports.Set("cudnnVersion", Napi::Function::New(env, CudnnVersion));
  exports.Set("deviceInfo", Napi::Function::New(env, DeviceInfo));
  exports.Set("philox", Napi::Function::New(env, Philox));
  exports.Set("DeviceTensor", DeviceTensor::Define(env));
  exports.Set("DeviceTimer", DeviceTimer::Define(env));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize));
  exports.Set("externalMemory", Napi::Function::New(env, ExternalMemory));
  registerFp8(env, exports);
  return exports;
}

}  // namespace
}  // namespace te_addon

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return te_addon::Init(env, exports); }

NODE_API_MODULE(te_native, InitModule)
