#include "device_tensor.h"

#include <string>

#include "te/te_device.h"

namespace te_addon {

namespace {
struct AddonData {
  Napi::FunctionReference device_tensor;
  std::shared_ptr<ExternalMemoryReport> memory = std::make_shared<ExternalMemoryReport>();
};
}  // namespace

Napi::Error status_error(Napi::Env env, int status, const char* what) {
  const std::string message = std::string(what) + ": " + te_last_error();
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, te_status_name(te_status(status))));
  e.Set("status", Napi::Number::New(env, status));
  return e;
}

Napi::Function DeviceTensor::Define(Napi::Env env) {
  Napi::Function f = DefineClass(env, "DeviceTensor",
                                 {InstanceMethod("upload", &DeviceTensor::Upload),
                                  InstanceMethod("download", &DeviceTensor::Download),
                                  InstanceMethod("zero", &DeviceTensor::Zero),
                                  InstanceMethod("dispose", &DeviceTensor::Dispose),
                                  InstanceAccessor("byteLength", &DeviceTensor::ByteLength, nullptr),
                                  InstanceAccessor("disposed", &DeviceTensor::Disposed, nullptr),
                                  InstanceAccessor("device", &DeviceTensor::Device, nullptr)});
  auto* data = new AddonData();
  data->device_tensor = Napi::Persistent(f);
  env.SetInstanceData<AddonData>(data);
  return f;
}

DeviceTensor* DeviceTensor::Unwrap(const Napi::Value& v) {
  if (!v.IsObject()) return nullptr;
  auto* data = v.Env().GetInstanceData<AddonData>();
  if (data == nullptr || !v.As<Napi::Object>().InstanceOf(data->device_tensor.Value())) return nullptr;
  return Napi::ObjectWrap<DeviceTensor>::Unwrap(v.As<Napi::Object>());
}

// new DeviceTensor(byteLength, device = 0)
DeviceTensor::DeviceTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceTensor>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "DeviceTensor(byteLength, device?): byteLength must be a number").ThrowAsJavaScriptException();
    return;
  }
  const double n = info[0].As<Napi::Number>().DoubleValue();
  if (!(n >= 0) || n > 9.007199254740991e15 || double(size_t(n)) != n) {
    Napi::RangeError::New(env, "DeviceTensor: byteLength must be a non-negative integer").ThrowAsJavaScriptException();
    return;
  }
  if (info.Length() > 1 && info[1].IsNumber()) device_ = info[1].As<Napi::Number>().Int32Value();
  bytes_ = size_t(n);
  void* p = nullptr;
  if (te_status s = te_device_alloc(device_, bytes_ == 0 ? 1 : bytes_, &p)) {
    bytes_ = 0;
    status_error(env, s, "DeviceTensor allocation").ThrowAsJavaScriptException();
    return;
  }
  ptr_ = p;
  memory_ = env.GetInstanceData<AddonData>()->memory;
  memory_->allocated(env, bytes_);
}

DeviceTensor::~DeviceTensor() {
  if (!disposed() && memory_) memory_->finalized(bytes_);
  Free();
}

void DeviceTensor::Free() {
  if (ptr_ != nullptr) {
    te_device_free(device_, ptr_);
    ptr_ = nullptr;
  }
}

namespace {
// The bytes of a typed array argument (whole view).
bool array_bytes(const Napi::CallbackInfo& info, void*& p, size_t& n) {
  if (info.Length() < 1 || !info[0].IsTypedArray()) return false;
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  p = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  n = ta.ByteLength();
  return true;
}
}  // namespace

Napi::Value DeviceTensor::Upload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void* p;
  size_t n;
  if (!array_bytes(info, p, n)) throw Napi::TypeError::New(env, "upload(typedArray): a typed array expected");
  if (disposed()) throw Napi::Error::New(env, "upload: the DeviceTensor was disposed");
  if (n != bytes_) throw Napi::RangeError::New(env, "upload: " + std::to_string(bytes_) + " bytes expected, got " + std::to_string(n));
  if (te_status s = te_memcpy_h2d(device_, ptr_, p, n)) throw status_error(env, s, "upload");
  return env.Undefined();
}

Napi::Value DeviceTensor::Download(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void* p;
  size_t n;
  if (!array_bytes(info, p, n)) throw Napi::TypeError::New(env, "download(typedArray): a typed array expected");
  if (disposed()) throw Napi::Error::New(env, "download: the DeviceTensor was disposed");
  if (n != bytes_) throw Napi::RangeError::New(env, "download: " + std::to_string(bytes_) + " bytes expected, got " + std::to_string(n));
  if (te_status s = te_memcpy_d2h(device_, p, ptr_, n)) throw status_error(env, s, "download");
  return info[0];
}

// zero(): every byte 0, queued on the device (no host buffer crosses the bus).
Napi::Value DeviceTensor::Zero(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed()) throw Napi::Error::New(env, "zero: the DeviceTensor was disposed");
  if (te_status s = te_device_memset(device_, ptr_, 0, bytes_)) throw status_error(env, s, "zero");
  return info.This();
}

Napi::Value DeviceTensor::Dispose(const Napi::CallbackInfo& info) {
  if (!disposed()) {
    memory_->released(info.Env(), bytes_);
    Free();
  }
  return info.Env().Undefined();
}

Napi::Value DeviceTensor::ByteLength(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(bytes_)); }
Napi::Value DeviceTensor::Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), disposed()); }
Napi::Value DeviceTensor::Device(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), device_); }

Napi::Value ExternalMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ExternalMemoryReport& m = *env.GetInstanceData<AddonData>()->memory;
  Napi::Object out = Napi::Object::New(env);
  out.Set("liveBytes", double(m.live()));
  out.Set("reportedBytes", double(m.reported()));
  return out;
}

namespace {
class SynchronizeWorker : public Napi::AsyncWorker {
 public:
  SynchronizeWorker(Napi::Env env, int device) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), device_(device) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    status_ = te_device_synchronize(device_);
    if (status_ != TE_OK) message_ = te_last_error();
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (status_ == TE_OK) {
      deferred_.Resolve(env.Undefined());
      return;
    }
    Napi::Error e = Napi::Error::New(env, "synchronize: " + message_);
    e.Set("code", Napi::String::New(env, te_status_name(status_)));
    e.Set("status", Napi::Number::New(env, status_));
    deferred_.Reject(e.Value());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int device_;
  te_status status_ = TE_OK;
  std::string message_;
};
}  // namespace

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int device = 0;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "synchronize(device?): device must be a number");
    device = info[0].As<Napi::Number>().Int32Value();
  }
  auto* worker = new SynchronizeWorker(env, device);
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

}  // namespace te_addon
