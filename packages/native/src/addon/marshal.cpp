#include "marshal.h"

#include <cmath>
#include <limits>

#include "device_tensor.h"

namespace te_addon {
namespace {

[[noreturn]] void bad(const std::string& field, const std::string& expected) { throw MarshalError{field, expected}; }

double number(const Napi::Object& o, const char* key, double fallback, bool required = true) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) {
    if (required) bad(key, "a number");
    return fallback;
  }
  if (!v.IsNumber()) bad(key, "a number");
  return v.As<Napi::Number>().DoubleValue();
}

int64_t integer(const Napi::Object& o, const char* key, int64_t lo, int64_t hi, bool required = true, int64_t fallback = 0) {
  const double x = number(o, key, double(fallback), required);
  if (!std::isfinite(x) || std::floor(x) != x || x < double(lo) || x > double(hi))
    bad(key, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return int64_t(x);
}

constexpr int64_t kMaxDim = int64_t(1) << 31;
constexpr int64_t kMaxStride = int64_t(1) << 48;

// A buffer (TypedArray of the element type, or a DeviceTensor) plus an element offset: pointer and numel.
void read_buffer(const Napi::Value& v, const std::string& name, napi_typedarray_type want, size_t elem, int64_t offset,
                 void*& ptr, int64_t& numel, Keepalive& keep) {
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    if (ta.TypedArrayType() != want) bad(name, want == napi_float32_array ? "a Float32Array" : want == napi_uint16_array ? "a Uint16Array" : want == napi_int32_array ? "an Int32Array" : "a Uint8Array");
    const size_t len = ta.ElementLength();
    if (offset < 0 || size_t(offset) > len) bad(name + ".offset", "an offset inside the array");
    Napi::ArrayBuffer ab = ta.ArrayBuffer();
    if (ab.Data() == nullptr && len > 0) bad(name, "an attached (not transferred) array");
    ptr = static_cast<uint8_t*>(ab.Data()) + ta.ByteOffset() + size_t(offset) * elem;
    numel = int64_t(len) - offset;
    keep.hold(v);
    return;
  }
  if (DeviceTensor* t = DeviceTensor::Unwrap(v)) {
    if (t->disposed()) bad(name, "a live DeviceTensor (this one was disposed)");
    if (offset < 0 || size_t(offset) * elem > t->bytes()) bad(name + ".offset", "an offset inside the tensor");
    ptr = static_cast<uint8_t*>(t->data()) + size_t(offset) * elem;
    numel = int64_t(t->bytes() / elem) - offset;
    keep.hold(v);
    return;
  }
  bad(name, "a typed array or DeviceTensor");
}

napi_typedarray_type array_type(te_dtype t) { return t == TE_F32 ? napi_float32_array : napi_uint16_array; }
size_t elem_size(te_dtype t) { return t == TE_F32 ? 4 : 2; }

// {data, offset, b, s, h, c}
template <typename View>
View read_view(const Napi::Object& parent, const char* key, te_dtype t, Keepalive& keep, bool required = true) {
  View view{};
  Napi::Value v = parent.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) bad(key, "a tensor view {data, offset, b, s, h, c}");
    return view;
  }
  if (!v.IsObject()) bad(key, "a tensor view {data, offset, b, s, h, c}");
  Napi::Object o = v.As<Napi::Object>();
  const int64_t offset = integer(o, "offset", 0, kMaxStride);
  void* ptr = nullptr;
  read_buffer(o.Get("data"), std::string(key) + ".data", array_type(t), elem_size(t), offset, ptr, view.numel, keep);
  view.data = ptr;
  view.b = integer(o, "b", 0, kMaxStride);
  view.s = integer(o, "s", 0, kMaxStride);
  view.h = integer(o, "h", 0, kMaxStride);
  view.c = integer(o, "c", 0, kMaxStride);
  return view;
}

template <typename T>
const T* optional_array(const Napi::Object& o, const char* key, napi_typedarray_type want, size_t min_len, Keepalive& keep,
                        int64_t* numel = nullptr) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  void* ptr = nullptr;
  int64_t n = 0;
  read_buffer(v, key, want, sizeof(T), 0, ptr, n, keep);
  if (n < int64_t(min_len)) bad(key, "at least " + std::to_string(min_len) + " elements");
  if (numel) *numel = n;
  return static_cast<const T*>(ptr);
}

}  // namespace

te_attn_desc read_desc(const Napi::Object& o) {
  te_attn_desc d{};
  d.format = te_format(integer(o, "format", 0, 2));
  d.dtype = te_dtype(integer(o, "dtype", 0, 2));
  d.b = int32_t(integer(o, "b", 1, kMaxDim - 1));
  d.h = int32_t(integer(o, "h", 1, kMaxDim - 1));
  d.hg = int32_t(integer(o, "hg", 1, kMaxDim - 1));
  d.d = int32_t(integer(o, "d", 1, kMaxDim - 1));
  d.dv = int32_t(integer(o, "dv", 1, kMaxDim - 1));
  d.sq = int32_t(integer(o, "sq", 0, kMaxDim - 1));
  d.skv = int32_t(integer(o, "skv", 0, kMaxDim - 1));
  d.tq = integer(o, "tq", 0, kMaxStride, false);
  d.tkv = integer(o, "tkv", 0, kMaxStride, false);
  d.causal = int32_t(integer(o, "causal", 0, 1));
  d.bottom_right = int32_t(integer(o, "bottomRight", 0, 1));
  d.window_left = int32_t(integer(o, "windowLeft", -1, kMaxDim - 1));
  d.window_right = int32_t(integer(o, "windowRight", -1, kMaxDim - 1));
  d.arbitrary_mask = int32_t(integer(o, "arbitraryMask", 0, 1));
  d.bias_type = te_bias_type(integer(o, "biasType", 0, 3));
  d.bias_dtype = te_dtype(integer(o, "biasDtype", 0, 2, false, d.dtype));
  d.bias_b = int32_t(integer(o, "biasB", 1, kMaxDim - 1, false, 1));
  d.bias_h = int32_t(integer(o, "biasH", 1, kMaxDim - 1, false, 1));
  d.alibi_per_batch = int32_t(integer(o, "alibiPerBatch", 0, 1, false));
  d.softmax_type = te_softmax_type(integer(o, "softmaxType", 0, 2));
  d.scale = float(number(o, "scale", 0));
  d.dropout = float(number(o, "dropout", 0, false));
  d.dropout_threshold = uint32_t(integer(o, "dropoutThreshold", 0, 0xffffffffll, false));
  d.dropout_seed = uint64_t(integer(o, "dropoutSeed", 0, (int64_t(1) << 53), false));
  d.dropout_offset = uint32_t(integer(o, "dropoutOffset", 0, 0xffffffffll, false));
  d.deterministic = int32_t(integer(o, "deterministic", 0, 1, false));
  return d;
}

te_attn_fwd_args read_fwd_args(const Napi::Object& o, const te_attn_desc& d, Keepalive& keep) {
  te_attn_fwd_args a{};
  a.q = read_view<te_view>(o, "q", d.dtype, keep);
  a.k = read_view<te_view>(o, "k", d.dtype, keep);
  a.v = read_view<te_view>(o, "v", d.dtype, keep);
  a.o = read_view<te_out_view>(o, "o", d.dtype, keep);
  int64_t n = 0;
  a.lse = const_cast<float*>(optional_array<float>(o, "lse", napi_float32_array, 0, keep, &n));
  if (a.lse == nullptr) bad("lse", "a Float32Array");
  a.lse_numel = n;
  const size_t cu = size_t(d.b) + 1;
  a.cu_seqlens_q = optional_array<int32_t>(o, "cuSeqlensQ", napi_int32_array, cu, keep);
  a.cu_seqlens_kv = optional_array<int32_t>(o, "cuSeqlensKv", napi_int32_array, cu, keep);
  a.cu_seqlens_q_padded = optional_array<int32_t>(o, "cuSeqlensQPadded", napi_int32_array, cu, keep);
  a.cu_seqlens_kv_padded = optional_array<int32_t>(o, "cuSeqlensKvPadded", napi_int32_array, cu, keep);
  if (d.bias_type == TE_PRE_SCALE_BIAS || d.bias_type == TE_POST_SCALE_BIAS) {
    Napi::Value bv = o.Get("bias");
    if (!bv.IsObject()) bad("bias", "{data, offset, sb, sh, ss}");
    Napi::Object b = bv.As<Napi::Object>();
    const int64_t offset = integer(b, "offset", 0, kMaxStride);
    void* ptr = nullptr;
    read_buffer(b.Get("data"), "bias.data", array_type(d.bias_dtype), elem_size(d.bias_dtype), offset, ptr, a.bias_numel, keep);
    a.bias = ptr;
    a.bias_sb = integer(b, "sb", 0, kMaxStride);
    a.bias_sh = integer(b, "sh", 0, kMaxStride);
    a.bias_ss = integer(b, "ss", 0, kMaxStride);
  }
  if (d.bias_type == TE_ALIBI)
    a.alibi_slopes = optional_array<float>(o, "alibiSlopes", napi_float32_array,
                                           size_t(d.alibi_per_batch ? d.b : 1) * d.h, keep);
  if (d.arbitrary_mask) {
    a.mask = optional_array<uint8_t>(o, "mask", napi_uint8_array, 0, keep, &a.mask_numel);
    a.mask_b = int32_t(integer(o, "maskB", 1, kMaxDim - 1));
    a.mask_h = int32_t(integer(o, "maskH", 1, kMaxDim - 1));
  }
  if (d.softmax_type == TE_SOFTMAX_LEARNABLE)
    a.softmax_offset = optional_array<float>(o, "softmaxOffset", napi_float32_array, size_t(d.h), keep);
  a.num_threads = int32_t(integer(o, "threads", 0, 4096, false));
  return a;
}

te_attn_bwd_args read_bwd_args(const Napi::Object& o, const te_attn_desc& d, Keepalive& keep) {
  te_attn_bwd_args a{};
  a.fwd = read_fwd_args(o, d, keep);
  a.d_o = read_view<te_view>(o, "dO", d.dtype, keep);
  a.dq = read_view<te_out_view>(o, "dq", d.dtype, keep);
  a.dk = read_view<te_out_view>(o, "dk", d.dtype, keep);
  a.dv = read_view<te_out_view>(o, "dv", d.dtype, keep);
  Napi::Value db = o.Get("dbias");
  if (!db.IsUndefined() && !db.IsNull()) {
    void* ptr = nullptr;
    read_buffer(db, "dbias", array_type(d.bias_dtype), elem_size(d.bias_dtype), 0, ptr, a.dbias_numel, keep);
    a.dbias = ptr;
  }
  int64_t n = 0;
  a.d_softmax_offset = const_cast<float*>(optional_array<float>(o, "dSoftmaxOffset", napi_float32_array, 0, keep, &n));
  if (a.d_softmax_offset && n < d.h) bad("dSoftmaxOffset", "a Float32Array of h elements");
  return a;
}

}  // namespace te_addon
