// The "cuda.flash" kernel family of the te C API (include/te/te_attention.h): converts a te_attn_desc
// and its argument block into the kernels' AttentionArgs, gives the reasons a call cannot run, and
// registers itself in the family table when the library loads.
#include <cuda_runtime.h>
#include <cstring>
#include <map>
#include <string>

#include "../flash/flash_api.h"
#include "desc_args.h"
#include "stream_workspace.h"
#include "status_internal.h"
#include "te/te_attention.h"

namespace te::cuda_flash {
namespace {

using te_cuda::AttentionArgs;
using cuda_family::refuse;

// Reasons that depend on the descriptor alone; the rest (pointers, strides) are checked per call.
std::string why_not(const te_attn_desc* d) {
  if (d->dtype != TE_F16 && d->dtype != TE_BF16) return "cuda.flash runs fp16 and bf16 only (fp32: cuda.unfused)";
  if (d->arbitrary_mask) return "cuda.flash has no arbitrary-mask path (mask tensors go to cuda.unfused)";
  if ((d->bias_type == TE_PRE_SCALE_BIAS || d->bias_type == TE_POST_SCALE_BIAS) && d->bias_dtype != d->dtype)
    return "cuda.flash reads the bias in the dtype of q/k/v";
  if (d->hg <= 0 || d->h % d->hg != 0) return "h must be a multiple of hg";
  return "";
}

te_status explain(const te_attn_desc* d, char* reason, size_t n) {
  const std::string why = why_not(d);
  if (!why.empty()) return refuse(reason, n, why);
  // The per-variant and device checks of the kernels, on a descriptor-only argument block with aligned
  // placeholder pointers and the contiguous strides of the format.
  AttentionArgs a;
  std::memset(&a, 0, sizeof a);
  a.elem = d->dtype == TE_F16 ? te_cuda::kF16 : te_cuda::kBF16;
  a.b = d->b, a.h = d->h, a.hkv = d->hg, a.d = d->d, a.dv = d->dv, a.sq = d->sq, a.skv = d->skv;
  a.softmax = int(d->softmax_type), a.deterministic = d->deterministic;
  static const int kAligned[4] = {0, 0, 0, 0};
  a.q = a.k = a.v = a.d_o = kAligned;
  a.o = const_cast<int*>(kAligned);
  a.workspace = const_cast<int*>(kAligned);
  a.q_st = a.k_st = a.v_st = a.o_st = a.do_st = a.dq_st = a.dk_st = a.dv_st = {0, 0, 0};
  char buf[256];
  if (!te_cuda_flash_explain(&a, 1, buf, sizeof buf)) return refuse(reason, n, buf);
  return TE_OK;
}

te_status forward(const te_attn_desc* d, const te_attn_fwd_args* f) {
  return guarded([&] {
    const std::string why = why_not(d);
    if (!why.empty()) return fail(TE_ERR_UNSUPPORTED, why);
    AttentionArgs a;
    const std::string bad = cuda_family::fwd_args(d, f, &a);
    if (!bad.empty()) return fail(TE_ERR_UNSUPPORTED, bad);
    char buf[256];
    if (!te_cuda_flash_explain(&a, 0, buf, sizeof buf)) return fail(TE_ERR_UNSUPPORTED, buf);
    const cudaError_t err = cudaError_t(te_cuda_flash_forward(&a, f->stream));
    if (err != cudaSuccess) return fail(TE_ERR_CUDA, std::string("cuda.flash forward: ") + cudaGetErrorString(err));
    return TE_OK;
  });
}

// The backward's workspace (Dvec and the dQ accumulator, which the kernels initialise themselves): the
// calling thread's cached buffer of the current device and `stream`, grown when a call needs more.
cudaError_t backwardWorkspace(cudaStream_t stream, size_t bytes, void** ws) {
  int device = 0;
  if (cudaError_t err = cudaGetDevice(&device)) return err;
  thread_local std::map<int, cuda_family::StreamWorkspace> per_device;
  return per_device[device].get(stream, bytes, ws);
}

te_status backward(const te_attn_desc* d, const te_attn_bwd_args* g) {
  return guarded([&] {
    const std::string why = why_not(d);
    if (!why.empty()) return fail(TE_ERR_UNSUPPORTED, why);
    AttentionArgs a;
    const std::string bad = cuda_family::bwd_args(d, g, &a);
    if (!bad.empty()) return fail(TE_ERR_UNSUPPORTED, bad);
    cudaStream_t stream = static_cast<cudaStream_t>(g->fwd.stream);
    void* ws = nullptr;
    cudaError_t err = backwardWorkspace(stream, te_cuda_flash_bwd_workspace_bytes(&a), &ws);
    if (err != cudaSuccess) return fail(TE_ERR_OUT_OF_MEMORY, std::string("cuda.flash workspace: ") + cudaGetErrorString(err));
    a.workspace = ws;
    char buf[256];
    if (!te_cuda_flash_explain(&a, 1, buf, sizeof buf)) return fail(TE_ERR_UNSUPPORTED, buf);
    // The kernels accumulate the learnable-offset gradient with atomics.
    if (a.dsoftmax_offset && d->softmax_type == TE_SOFTMAX_LEARNABLE)
      err = cudaMemsetAsync(a.dsoftmax_offset, 0, sizeof(float) * size_t(d->h), stream);
    if (err == cudaSuccess) err = cudaError_t(te_cuda_flash_backward(&a, stream));
    if (err != cudaSuccess) return fail(TE_ERR_CUDA, std::string("cuda.flash backward: ") + cudaGetErrorString(err));
    return TE_OK;
  });
}

// Registration when the library loads (sources.cmake keeps this object linked in).
struct Registrar {
  Registrar() {
    static const te_attn_family family{"cuda.flash", explain, forward, backward};
    te_attn_register(&family);
  }
};
const Registrar registrar;

}  // namespace
}  // namespace te::cuda_flash

// Referenced by the link options of sources.cmake so that static linking keeps the registrar.
extern "C" {
int te_cuda_flash_family_linked = 1;
}
