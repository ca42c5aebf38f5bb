// Reading te_attn_desc and argument blocks from the plain JS objects the TypeScript side builds.
// Every malformed value becomes a JS TypeError/RangeError naming the field, never a crash.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "te/te_attention.h"

namespace te_addon {

// Thrown while reading JS values; turned into a JS error by the caller.
struct MarshalError {
  std::string field;
  std::string expected;
};

te_attn_desc read_desc(const Napi::Object& o);

// Typed arrays (and device tensors) an async call reads or writes: kept alive until it finishes. A call
// that runs to its end on the JS thread (enqueueForward/Backward) holds nothing: its arguments are alive
// for the whole call, and device memory is freed in stream order after the kernels queued on it.
struct Keepalive {
  explicit Keepalive(bool holds = true) : holds(holds) {}
  bool holds;
  std::vector<Napi::Reference<Napi::Value>> refs;
  void hold(const Napi::Value& v) {
    if (holds) refs.push_back(Napi::Persistent(v));
  }
};

te_attn_fwd_args read_fwd_args(const Napi::Object& o, const te_attn_desc& d, Keepalive& keep);
te_attn_bwd_args read_bwd_args(const Napi::Object& o, const te_attn_desc& d, Keepalive& keep);

}  // namespace te_addon
