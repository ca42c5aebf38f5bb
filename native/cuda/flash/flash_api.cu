// Dispatch of cuda.flash calls to the compiled (dtype, d, dv) variants, and the reasons a call cannot
// run (explain), checked before any launch so that a missing variant is never a crash.
#include <stdio.h>
#include <string.h>
#include "flash_api.h"
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "flash_launch.h"
#include "flash_workspace.h"

namespace te_cuda {
namespace {

using Launcher = cudaError_t (*)(const AttentionArgs&, cudaStream_t);
struct FlashVariant {
  int elem, d, dv;
  Launcher fwd, bwd;
};

const FlashVariant kVariants[] = {
#include "generated/flash_variants.inc"
};

const FlashVariant* find_variant(const AttentionArgs& a) {
  for (const FlashVariant& v : kVariants)
    if (v.elem == a.elem && v.d == a.d && v.dv == a.dv) return &v;
  return nullptr;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }
bool strides_ok(const Strides& s) { return s.b % 8 == 0 && s.s % 8 == 0 && s.h % 8 == 0; }

// Returns nullptr when the call can run, else the reason.
const char* why_not(const AttentionArgs& a, bool backward, char* buf, size_t n) {
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess)
    return "no CUDA device";
  if (major < 8) return "cuda.flash needs compute capability 8.0+ (mma.sync bf16, cp.async)";
  if (a.elem != kF16 && a.elem != kBF16) return "cuda.flash runs fp16 and bf16 only (fp32: cuda.unfused)";
  if (!find_variant(a)) {
    snprintf(buf, n, "cuda.flash has no compiled variant for d=%d dv=%d (see native/cuda/flash/flash_variants.json)",
             a.d, a.dv);
    return buf;
  }
  if (a.hkv <= 0 || a.h % a.hkv != 0) return "h must be a multiple of the number of kv heads";
  if (!aligned16(a.q) || !aligned16(a.k) || !aligned16(a.v) || !aligned16(a.o))
    return "q, k, v and o must be 16-byte aligned (cp.async)";
  if (!strides_ok(a.q_st) || !strides_ok(a.k_st) || !strides_ok(a.v_st) || !strides_ok(a.o_st))
    return "cuda.flash needs batch/seq/head strides that are multiples of 8 elements and a contiguous head dim";
  if (a.thd && (!a.cu_q || !a.cu_kv || !a.tok_q || !a.tok_kv)) return "thd needs cu_seqlens for q and kv";
  if (a.bias_kind != kNoBias && a.bias == nullptr) return "bias pointer missing";
  if (backward) {
    if (a.deterministic && a.softmax == kLearnable)
      return "cuda.flash deterministic backward: the learnable softmax offset's gradient is summed with atomics";
    if (!aligned16(a.d_o) || !strides_ok(a.do_st) || !strides_ok(a.dq_st) || !strides_ok(a.dk_st) ||
        !strides_ok(a.dv_st))
      return "dO/dQ/dK/dV need strides that are multiples of 8 elements";
    if (a.workspace == nullptr) return "backward workspace missing";
  }
  return nullptr;
}

}  // namespace
}  // namespace te_cuda

using te_cuda::AttentionArgs;

extern "C" int te_cuda_flash_explain(const AttentionArgs* args, int is_backward, char* reason, size_t reason_size) {
  char buf[256];
  const char* why = te_cuda::why_not(*args, is_backward != 0, buf, sizeof buf);
  if (!why) return 1;
  if (reason && reason_size) {
    strncpy(reason, why, reason_size - 1);
    reason[reason_size - 1] = 0;
  }
  return 0;
}

extern "C" size_t te_cuda_flash_bwd_workspace_bytes(const AttentionArgs* args) {
  return te_cuda::bwd_workspace_floats(*args) * sizeof(float);
}

extern "C" int te_cuda_flash_forward(const AttentionArgs* args, void* stream) {
  const te_cuda::FlashVariant* v = te_cuda::find_variant(*args);
  if (!v) return int(cudaErrorInvalidValue);
  return int(v->fwd(*args, static_cast<cudaStream_t>(stream)));
}

extern "C" int te_cuda_flash_backward(const AttentionArgs* args, void* stream) {
  const te_cuda::FlashVariant* v = te_cuda::find_variant(*args);
  if (!v) return int(cudaErrorInvalidValue);
  return int(v->bwd(*args, static_cast<cudaStream_t>(stream)));
}
