// The "cuda.unfused" kernel family of the te C API: separate kernels over fp32 score buffers, fp32 /
// fp16 / bf16, arbitrary masks, deterministic backward. Registers itself when the library loads.
#include <cuda_runtime.h>
#include <string>

#include "../unfused/unfused_api.h"
#include "desc_args.h"
#include "status_internal.h"
#include "te/te_attention.h"

namespace te::cuda_unfused {
namespace {

using te_cuda::AttentionArgs;

std::string why_not(const te_attn_desc* d) {
  if ((d->bias_type == TE_PRE_SCALE_BIAS || d->bias_type == TE_POST_SCALE_BIAS) && d->bias_dtype != d->dtype)
    return "cuda.unfused reads the bias in the dtype of q/k/v";
  AttentionArgs a{};
  a.elem = cuda_family::elem_of(d->dtype);
  a.b = d->b, a.h = d->h, a.hkv = d->hg, a.d = d->d, a.dv = d->dv, a.sq = d->sq, a.skv = d->skv;
  char buf[256];
  if (!te_cuda_unfused_explain(&a, buf, sizeof buf)) return buf;
  return "";
}

te_status explain(const te_attn_desc* d, char* reason, size_t n) {
  const std::string why = why_not(d);
  return why.empty() ? TE_OK : cuda_family::refuse(reason, n, why);
}

// Runs forward or backward with a workspace allocated on the call's stream.
te_status launch(const te_attn_desc* d, AttentionArgs& a, void* stream_ptr, bool backward) {
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  void* ws = nullptr;
  cudaError_t err = cudaMallocAsync(&ws, te_cuda_unfused_workspace_bytes(&a), stream);
  if (err != cudaSuccess) return fail(TE_ERR_OUT_OF_MEMORY, std::string("cuda.unfused workspace: ") + cudaGetErrorString(err));
  a.workspace = ws;
  (void)d;
  err = cudaError_t(backward ? te_cuda_unfused_backward(&a, stream) : te_cuda_unfused_forward(&a, stream));
  const cudaError_t free_err = cudaFreeAsync(ws, stream);
  if (err == cudaSuccess) err = free_err;
  if (err != cudaSuccess) return fail(TE_ERR_CUDA, std::string("cuda.unfused: ") + cudaGetErrorString(err));
  return TE_OK;
}

te_status forward(const te_attn_desc* d, const te_attn_fwd_args* f) {
  return guarded([&] {
    const std::string why = why_not(d);
    if (!why.empty()) return fail(TE_ERR_UNSUPPORTED, why);
    AttentionArgs a;
    const std::string bad = cuda_family::fwd_args(d, f, &a);
    if (!bad.empty()) return fail(TE_ERR_UNSUPPORTED, bad);
    return launch(d, a, f->stream, false);
  });
}

te_status backward(const te_attn_desc* d, const te_attn_bwd_args* g) {
  return guarded([&] {
    const std::string why = why_not(d);
    if (!why.empty()) return fail(TE_ERR_UNSUPPORTED, why);
    AttentionArgs a;
    const std::string bad = cuda_family::bwd_args(d, g, &a, /*computes_dbias=*/true);
    if (!bad.empty()) return fail(TE_ERR_UNSUPPORTED, bad);
    return launch(d, a, g->fwd.stream, true);
  });
}

struct Registrar {
  Registrar() {
    static const te_attn_family family{"cuda.unfused", explain, forward, backward};
    te_attn_register(&family);
  }
};
const Registrar registrar;

}  // namespace
}  // namespace te::cuda_unfused

// Referenced by the link options of sources.cmake so that static linking keeps the registrar.
extern "C" {
int te_cuda_unfused_family_linked = 1;
}
