// What V8 is told about the device memory that DeviceTensors hold (napi_adjust_external_memory), so that
// a program which drops tensors without dispose() still gets the GCs that run their finalizers.
//
// Reporting each allocation and free as it happens costs a full GC per iteration of a training loop:
// V8 starts one whenever the reported amount rises 64 MiB above its value at the last GC, and a
// forward+backward that allocates 64 MiB of outputs and disposes them (test_1) crosses that line every
// time (measured: ~1 ms a call). So V8 is told a capacity instead of the live bytes: it grows to twice
// the live bytes when they pass it and shrinks to twice the live bytes when they fall below a quarter
// of it. A loop whose live memory goes up and down within that band reports nothing; memory that keeps
// growing (tensors that are never disposed) is reported in doubling steps, each large enough to start
// the GC that finalizes what is unreachable.
#pragma once
#include <napi.h>

#include <cstdint>

namespace te_addon {

class ExternalMemoryReport {
 public:
  // An allocation or a dispose(): V8 is told about the change of capacity, if any (JS thread).
  void allocated(Napi::Env env, size_t bytes);
  void released(Napi::Env env, size_t bytes);
  // A finalizer freed the memory: counted now, told to V8 at the next allocation or dispose (a
  // finalizer is no place to adjust V8's GC accounting).
  void finalized(size_t bytes) { live_ -= int64_t(bytes); }

  int64_t live() const { return live_; }
  int64_t reported() const { return reported_; }

 private:
  void reconcile(Napi::Env env);
  int64_t live_ = 0;
  int64_t reported_ = 0;
};

}  // namespace te_addon
