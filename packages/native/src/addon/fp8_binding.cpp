// FP8 attention through cuDNN to JS (native/cudnn/fp8_attention.h): fp8Explain, fp8Forward,
// fp8Backward, fp8Quantize, fp8Dequantize, and the device-resident recipe state's fp8StatePrepare,
// fp8StateRecord, fp8StateUpdate (native/cudnn/fp8_recipe_state.h). Everything is queued on the JS thread, as enqueueForward
// is. Tensors are DeviceTensors with element offsets of their own dtype (one byte for FP8, so the
// views are read here rather than with marshal.cpp's 16-bit readers). The C functions exist only in
// CUDA builds, hence weak: CPU builds answer every call with a reason or TE_ERR_NO_CUDA.
#include "fp8_binding.h"

#include <string>

#include "../../../../native/cudnn/fp8_attention.h"
#include "../../../../native/cudnn/fp8_recipe_state.h"
#include "device_tensor.h"
#include "marshal.h"

extern "C" {
te_status te_cudnn_fp8_explain(const te_attn_desc*, te_fp8_format, te_fp8_format, int, char*, size_t)
    __attribute__((weak));
te_status te_cudnn_fp8_forward(const te_attn_desc*, te_fp8_format, const te_attn_fwd_args*, float*)
    __attribute__((weak));
te_status te_cudnn_fp8_backward(const te_attn_desc*, te_fp8_format, te_fp8_format, const te_attn_bwd_args*, float*)
    __attribute__((weak));
te_status te_fp8_quantize(te_dtype, const void*, int64_t, te_fp8_format, void*, float*, te_fp8_tensor, void*)
    __attribute__((weak));
te_status te_fp8_dequantize(te_fp8_format, const void*, int64_t, te_dtype, void*, const float*, te_fp8_tensor, void*)
    __attribute__((weak));
te_status te_fp8_state_prepare(const void*, te_fp8_format, te_fp8_pass, float*, void*) __attribute__((weak));
te_status te_fp8_state_record(void*, int64_t, const float*, uint32_t, void*) __attribute__((weak));
te_status te_fp8_state_update(void*, int64_t, te_fp8_format, te_fp8_format, te_fp8_pass, te_fp8_amax_algo, double,
                              void*) __attribute__((weak));
}

namespace te_addon {
namespace {

constexpr char kNoCuda[] = "FP8 attention needs a CUDA build of the addon (cuda.cudnn)";

Napi::Error argError(Napi::Env env, const std::string& field, const std::string& expected) {
  Napi::Error e = Napi::TypeError::New(env, field + ": expected " + expected);
  e.Set("code", Napi::String::New(env, "TE_ERR_INVALID_ARGUMENT"));
  e.Set("argument", Napi::String::New(env, field));
  return e;
}

int64_t intOf(Napi::Env env, const Napi::Value& v, const std::string& field, int64_t lo, int64_t hi) {
  if (!v.IsNumber()) throw argError(env, field, "an integer");
  const double x = v.As<Napi::Number>().DoubleValue();
  if (!(x >= double(lo) && x <= double(hi)) || double(int64_t(x)) != x)
    throw argError(env, field, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return int64_t(x);
}

// A live DeviceTensor and a byte pointer at `offset` elements of `elem` bytes; numel = elements from there.
void* deviceAt(Napi::Env env, const Napi::Value& v, const std::string& field, int64_t offset, size_t elem,
               int64_t* numel = nullptr) {
  DeviceTensor* t = DeviceTensor::Unwrap(v);
  if (t == nullptr || t->disposed()) throw argError(env, field, "a live DeviceTensor");
  if (offset < 0 || size_t(offset) * elem > t->bytes()) throw argError(env, field + ".offset", "an offset inside the tensor");
  if (numel != nullptr) *numel = int64_t(t->bytes() / elem) - offset;
  return static_cast<uint8_t*>(t->data()) + size_t(offset) * elem;
}

// {data: DeviceTensor, offset, b, s, h, c} of FP8 (one-byte) elements.
template <typename View>
View fp8View(Napi::Env env, const Napi::Object& args, const char* key) {
  const Napi::Value v = args.Get(key);
  if (!v.IsObject()) throw argError(env, key, "an FP8 tensor view {data, offset, b, s, h, c}");
  const Napi::Object o = v.As<Napi::Object>();
  View view{};
  constexpr int64_t kMax = int64_t(1) << 48;
  const int64_t offset = o.Has("offset") ? intOf(env, o.Get("offset"), std::string(key) + ".offset", 0, kMax) : 0;
  view.data = deviceAt(env, o.Get("data"), std::string(key) + ".data", offset, 1, &view.numel);
  view.b = intOf(env, o.Get("b"), std::string(key) + ".b", 0, kMax);
  view.s = intOf(env, o.Get("s"), std::string(key) + ".s", 0, kMax);
  view.h = intOf(env, o.Get("h"), std::string(key) + ".h", 0, kMax);
  view.c = intOf(env, o.Get("c"), std::string(key) + ".c", 0, kMax);
  return view;
}

const int32_t* optionalInt32(Napi::Env env, const Napi::Object& args, const char* key) {
  const Napi::Value v = args.Get(key);
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  return static_cast<const int32_t*>(deviceAt(env, v, key, 0, 4));
}

te_attn_fwd_args fwdArgs(Napi::Env env, const Napi::Object& a, const te_attn_desc& d) {
  te_attn_fwd_args f{};
  f.q = fp8View<te_view>(env, a, "q");
  f.k = fp8View<te_view>(env, a, "k");
  f.v = fp8View<te_view>(env, a, "v");
  f.o = fp8View<te_out_view>(env, a, "o");
  int64_t n = 0;
  f.lse = static_cast<float*>(deviceAt(env, a.Get("lse"), "lse", 0, 4, &n));
  f.lse_numel = n;
  if (n < int64_t(d.b) * d.h * d.sq) throw argError(env, "lse", "[b, h, sq] fp32");
  f.cu_seqlens_q = optionalInt32(env, a, "cuSeqlensQ");
  f.cu_seqlens_kv = optionalInt32(env, a, "cuSeqlensKv");
  return f;
}

te_fp8_format formatArg(const Napi::CallbackInfo& info, size_t i, const char* field) {
  return te_fp8_format(intOf(info.Env(), info[i], field, 0, 1));
}

te_attn_desc descArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsObject()) throw argError(info.Env(), "desc", "an object");
  try {
    return read_desc(info[i].As<Napi::Object>());
  } catch (const MarshalError& e) {
    throw argError(info.Env(), "desc." + e.field, e.expected);
  }
}

float* metaArg(const Napi::CallbackInfo& info, size_t i) {
  int64_t n = 0;
  auto* m = static_cast<float*>(deviceAt(info.Env(), info[i], "meta", 0, 4, &n));
  if (n < TE_FP8_META_FLOATS) throw argError(info.Env(), "meta", "a DeviceTensor of TE_FP8_META_FLOATS fp32");
  return m;
}

void checked(Napi::Env env, te_status s, const char* what) {
  if (s == TE_OK) return;
  Napi::Error e = Napi::Error::New(env, std::string(what) + ": " + te_last_error());
  e.Set("code", Napi::String::New(env, te_status_name(s)));
  e.Set("status", Napi::Number::New(env, s));
  throw e;
}

// fp8Explain(desc, fwdFormat, bwdFormat, backward) -> reason ("" when it can run)
Napi::Value Fp8Explain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (te_cudnn_fp8_explain == nullptr) return Napi::String::New(env, kNoCuda);
  const te_attn_desc d = descArg(info, 0);
  char reason[512];
  const te_status s = te_cudnn_fp8_explain(&d, formatArg(info, 1, "fwdFormat"), formatArg(info, 2, "bwdFormat"),
                                           info[3].ToBoolean().Value() ? 1 : 0, reason, sizeof reason);
  if (s == TE_OK) return Napi::String::New(env, "");
  if (s == TE_ERR_UNSUPPORTED) return Napi::String::New(env, reason);
  throw status_error(env, s, "fp8Explain");
}

// fp8Forward(desc, args {q, k, v, o, lse, cuSeqlensQ?, cuSeqlensKv?}, fwdFormat, meta)
Napi::Value Fp8Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (te_cudnn_fp8_forward == nullptr) throw status_error(env, TE_ERR_NO_CUDA, kNoCuda);
  const te_attn_desc d = descArg(info, 0);
  if (!info[1].IsObject()) throw argError(env, "args", "an object");
  const te_attn_fwd_args f = fwdArgs(env, info[1].As<Napi::Object>(), d);
  checked(env, te_cudnn_fp8_forward(&d, formatArg(info, 2, "fwdFormat"), &f, metaArg(info, 3)), "forward");
  return env.Undefined();
}

// fp8Backward(desc, args {forward's + dO, dq, dk, dv}, fwdFormat, bwdFormat, meta)
Napi::Value Fp8Backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (te_cudnn_fp8_backward == nullptr) throw status_error(env, TE_ERR_NO_CUDA, kNoCuda);
  const te_attn_desc d = descArg(info, 0);
  if (!info[1].IsObject()) throw argError(env, "args", "an object");
  const Napi::Object a = info[1].As<Napi::Object>();
  te_attn_bwd_args g{};
  g.fwd = fwdArgs(env, a, d);
  g.d_o = fp8View<te_view>(env, a, "dO");
  g.dq = fp8View<te_out_view>(env, a, "dq");
  g.dk = fp8View<te_out_view>(env, a, "dk");
  g.dv = fp8View<te_out_view>(env, a, "dv");
  checked(env,
          te_cudnn_fp8_backward(&d, formatArg(info, 2, "fwdFormat"), formatArg(info, 3, "bwdFormat"), &g,
                                metaArg(info, 4)),
          "backward");
  return env.Undefined();
}

size_t elemOf(te_dtype t) { return t == TE_F32 ? 4 : 2; }

// fp8Quantize(srcDtype, x, xOffset, n, format, y, yOffset, meta, tensor)
Napi::Value Fp8Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (te_fp8_quantize == nullptr) throw status_error(env, TE_ERR_NO_CUDA, kNoCuda);
  const auto src = te_dtype(intOf(env, info[0], "srcDtype", 0, 2));
  const int64_t n = intOf(env, info[3], "n", 0, int64_t(1) << 48);
  int64_t have_x = 0, have_y = 0;
  const void* x = deviceAt(env, info[1], "x", intOf(env, info[2], "xOffset", 0, int64_t(1) << 48), elemOf(src), &have_x);
  void* y = deviceAt(env, info[5], "y", intOf(env, info[6], "yOffset", 0, int64_t(1) << 48), 1, &have_y);
  if (have_x < n || have_y < n) throw argError(env, "n", "at most the elements of x and y");
  checked(env,
          te_fp8_quantize(src, x, n, formatArg(info, 4, "format"), y, metaArg(info, 7),
                          te_fp8_tensor(intOf(env, info[8], "tensor", 0, TE_FP8_TENSORS - 1)), nullptr),
          "fp8Quantize");
  return env.Undefined();
}

// fp8Dequantize(format, x, xOffset, n, dstDtype, y, meta, tensor)
Napi::Value Fp8Dequantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (te_fp8_dequantize == nullptr) throw status_error(env, TE_ERR_NO_CUDA, kNoCuda);
  const auto dst = te_dtype(intOf(env, info[4], "dstDtype", 0, 2));
  const int64_t n = intOf(env, info[3], "n", 0, int64_t(1) << 48);
  int64_t have_x = 0, have_y = 0;
  const void* x = deviceAt(env, info[1], "x", intOf(env, info[2], "xOffset", 0, int64_t(1) << 48), 1, &have_x);
  void* y = deviceAt(env, info[5], "y", 0, elemOf(dst), &have_y);
  if (have_x < n || have_y < n) throw argError(env, "n", "at most the elements of x and y");
  checked(env,
          te_fp8_dequantize(formatArg(info, 0, "format"), x, n, dst, y, metaArg(info, 6),
                            te_fp8_tensor(intOf(env, info[7], "tensor", 0, TE_FP8_TENSORS - 1)), nullptr),
          "fp8Dequantize");
  return env.Undefined();
}

constexpr int64_t kMaxHistory = int64_t(1) << 30;

// The recipe state argument: a live DeviceTensor of TE_FP8_STATE_BYTES(historyLen) bytes at least.
void* stateArg(const Napi::CallbackInfo& info, size_t i, int64_t len) {
  int64_t bytes = 0;
  void* p = deviceAt(info.Env(), info[i], "state", 0, 1, &bytes);
  if (bytes < int64_t(TE_FP8_STATE_BYTES(len)))
    throw argError(info.Env(), "state", "a DeviceTensor of TE_FP8_STATE_BYTES(historyLen) = " +
                                            std::to_string(TE_FP8_STATE_BYTES(len)) + " bytes");
  return p;
}

te_fp8_pass passArg(const Napi::CallbackInfo& info, size_t i) {
  return te_fp8_pass(intOf(info.Env(), info[i], "pass", TE_FP8_PASS_FORWARD, TE_FP8_PASS_BACKWARD));
}

// fp8StatePrepare(state, historyLen, fwdFormat, pass, meta)
Napi::Value Fp8StatePrepare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (te_fp8_state_prepare == nullptr) throw status_error(env, TE_ERR_NO_CUDA, kNoCuda);
  const int64_t len = intOf(env, info[1], "historyLen", 1, kMaxHistory);
  checked(env,
          te_fp8_state_prepare(stateArg(info, 0, len), formatArg(info, 2, "fwdFormat"), passArg(info, 3),
                               metaArg(info, 4), nullptr),
          "fp8StatePrepare");
  return env.Undefined();
}

// fp8StateRecord(state, historyLen, meta, tensors): tensors = bits of te_fp8_tensor
Napi::Value Fp8StateRecord(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (te_fp8_state_record == nullptr) throw status_error(env, TE_ERR_NO_CUDA, kNoCuda);
  const int64_t len = intOf(env, info[1], "historyLen", 1, kMaxHistory);
  const auto tensors = uint32_t(intOf(env, info[3], "tensors", 0, (1 << TE_FP8_TENSORS) - 1));
  checked(env, te_fp8_state_record(stateArg(info, 0, len), len, metaArg(info, 2), tensors, nullptr), "fp8StateRecord");
  return env.Undefined();
}

// fp8StateUpdate(state, historyLen, fwdFormat, bwdFormat, pass, algo (0 max, 1 most_recent), marginScale)
Napi::Value Fp8StateUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (te_fp8_state_update == nullptr) throw status_error(env, TE_ERR_NO_CUDA, kNoCuda);
  const int64_t len = intOf(env, info[1], "historyLen", 1, kMaxHistory);
  const auto algo = te_fp8_amax_algo(intOf(env, info[5], "algo", TE_FP8_AMAX_MAX, TE_FP8_AMAX_MOST_RECENT));
  if (!info[6].IsNumber()) throw argError(env, "marginScale", "2^margin, a number");
  checked(env,
          te_fp8_state_update(stateArg(info, 0, len), len, formatArg(info, 2, "fwdFormat"),
                              formatArg(info, 3, "bwdFormat"), passArg(info, 4), algo,
                              info[6].As<Napi::Number>().DoubleValue(), nullptr),
          "fp8StateUpdate");
  return env.Undefined();
}

}  // namespace

void registerFp8(Napi::Env env, Napi::Object exports) {
  exports.Set("fp8Explain", Napi::Function::New(env, Fp8Explain));
  exports.Set("fp8Forward", Napi::Function::New(env, Fp8Forward));
  exports.Set("fp8Backward", Napi::Function::New(env, Fp8Backward));
  exports.Set("fp8Quantize", Napi::Function::New(env, Fp8Quantize));
  exports.Set("fp8Dequantize", Napi::Function::New(env, Fp8Dequantize));
  exports.Set("fp8StatePrepare", Napi::Function::New(env, Fp8StatePrepare));
  exports.Set("fp8StateRecord", Napi::Function::New(env, Fp8StateRecord));
  exports.Set("fp8StateUpdate", Napi::Function::New(env, Fp8StateUpdate));
}

}  // namespace te_addon
