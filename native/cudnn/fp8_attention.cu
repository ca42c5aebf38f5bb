// FP8 attention through cuDNN (fp8_attention.h): the reasons a call cannot run (cuDNN's FP8 support
// surface on this device and version), and forward/backward through the graphs of fp8_sdpa_graph.h
// with plans cached per (thread, device) on their own cuDNN handle.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../cuda/family/desc_args.h"
#include "cudnn_library.h"
#include "fp8_attention.h"
#include "fp8_sdpa_graph.h"
#include "plan_cache.h"
#include "row_fixup.h"
#include "status_internal.h"

namespace te::cudnn {
namespace {

using cuda_family::refuse;

abi::DataType cudnnTypeOf(te_fp8_format f) {
  return f == TE_FP8_E4M3 ? abi::CUDNN_DATA_FP8_E4M3 : abi::CUDNN_DATA_FP8_E5M2;
}

int deviceArch() {
  int device = 0, major = 0, minor = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  return major * 10 + minor;
}

// The causal diagonal of a call: bottom-right equals top-left when lengths are equal and full.
bool causalOf(const te_attn_desc* d) { return d->causal != 0 || d->window_right == 0; }

// Reasons that depend on the descriptor, the formats, the device and the cuDNN version.
std::string whyNot(const te_attn_desc* d, int fwd, int bwd, bool backward) {
  std::string load_error;
  if (loadLibrary(&load_error) == nullptr) return "cuda.cudnn FP8: " + load_error;
  const int version = loadedVersion();
  if (version < 90100) return "cuda.cudnn FP8 attention needs cuDNN 9.1.0+ (found " + std::to_string(version) + ")";
  if (version == 91000) return "cuda.cudnn FP8 attention is disabled for cuDNN 9.10.0 (known FP8 attention bugs)";
  const int arch = deviceArch();
  if (arch < 90) return "cuda.cudnn FP8 attention needs sm90+ (found sm" + std::to_string(arch) + ")";
  if (arch != 90) return "cuda.cudnn FP8 graphs are built and checked for sm90 only (found sm" + std::to_string(arch) + ")";
  for (int f : {fwd, bwd})
    if (f != TE_FP8_E4M3 && f != TE_FP8_E5M2) return "cuda.cudnn FP8: format TE_FP8_E4M3 or TE_FP8_E5M2 expected";
  if (d->format == TE_THD) return "cuda.cudnn FP8 on sm90 does not support thd (ragged offsets)";
  if (d->arbitrary_mask) return "cuda.cudnn FP8 has no arbitrary-mask graph";
  if (d->bias_type != TE_NO_BIAS) return "cuda.cudnn FP8 (cuDNN sub-backend 2) does not support bias or ALiBi";
  if (d->softmax_type != TE_SOFTMAX_VANILLA) return "cuda.cudnn FP8 runs the vanilla softmax only";
  if (d->dropout > 0) return "cuda.cudnn FP8: dropout is not wired";
  const bool causal = causalOf(d);
  if (d->window_left >= 0 || d->window_right > 0) return "cuda.cudnn FP8 does not support sliding window attention";
  if (causal && d->bottom_right && d->sq != d->skv)
    return "cuda.cudnn FP8: cuDNN's bottom-right causal mask in FP8 needs sm100+ (sq != skv on sm90)";
  if (d->hg <= 0 || d->h % d->hg != 0) return "h must be a multiple of hg";
  if (d->d % 16 != 0 || d->dv % 16 != 0 || d->d > 256 || d->dv > 256)
    return "cuda.cudnn FP8 on sm90 needs head dims that are multiples of 16, at most 256 (d=" + std::to_string(d->d) +
           ", dv=" + std::to_string(d->dv) + ")";
  if (backward && (d->d != 128 || d->dv != 128))
    return "cuda.cudnn FP8 backward on sm90 needs d = dv = 128 (d=" + std::to_string(d->d) +
           ", dv=" + std::to_string(d->dv) + ")";
  if (version < 90700 && (d->d != 128 || d->dv != 128 || d->sq % 128 != 0 || d->skv % 128 != 0))
    return "cuda.cudnn FP8 before cuDNN 9.7.0 needs d = dv = 128 and sq, skv divisible by 128";
  return "";
}

// "" or why an FP8 tensor cannot be handed to cuDNN as is (16-byte alignment = 16 elements).
std::string checkView(const char* name, const void* data, int64_t b, int64_t s, int64_t h, int64_t c) {
  if (data == nullptr) return std::string(name) + ": a device pointer expected";
  if (c != 1) return std::string(name) + ": cuda.cudnn FP8 needs a contiguous head dim (channel stride 1)";
  if (reinterpret_cast<uintptr_t>(data) % 16 != 0 || b % 16 != 0 || s % 16 != 0 || h % 16 != 0)
    return std::string(name) + ": cuda.cudnn FP8 needs 16-byte aligned data and strides that are multiples of 16";
  return cuda_family::device_pointer(name, data);
}

BhsStrides bhs(const te_view& v) { return {v.b, v.h, v.s}; }
BhsStrides bhs(const te_out_view& v) { return {v.b, v.h, v.s}; }

std::string configOf(const te_attn_desc* d, int fwd, int bwd, bool backward, const te_attn_fwd_args* f,
                     const float* meta, Fp8SdpaConfig* c) {
  const std::string why = whyNot(d, fwd, bwd, backward);
  if (!why.empty()) return why;
  for (auto [name, v] : {std::pair<const char*, const te_view*>{"q", &f->q}, {"k", &f->k}, {"v", &f->v}}) {
    std::string bad = checkView(name, v->data, v->b, v->s, v->h, v->c);
    if (!bad.empty()) return bad;
  }
  std::string bad = checkView("o", f->o.data, f->o.b, f->o.s, f->o.h, f->o.c);
  if (bad.empty()) bad = cuda_family::device_pointer("lse", f->lse);
  if (bad.empty()) bad = cuda_family::device_pointer("meta", meta);
  if (bad.empty()) bad = cuda_family::device_pointer("cu_seqlens_q", f->cu_seqlens_q);
  if (bad.empty()) bad = cuda_family::device_pointer("cu_seqlens_kv", f->cu_seqlens_kv);
  if (!bad.empty()) return bad;
  if (meta == nullptr) return "meta: a device block of TE_FP8_META_FLOATS floats expected";
  if (f->lse == nullptr || f->lse_numel < int64_t(d->b) * d->h * d->sq) return "lse: [b, h, sq] fp32 expected";
  c->fwd = cudnnTypeOf(te_fp8_format(fwd)), c->bwd = cudnnTypeOf(te_fp8_format(bwd));
  c->b = d->b, c->h = d->h, c->hg = d->hg, c->d = d->d, c->dv = d->dv, c->sq = d->sq, c->skv = d->skv;
  c->causal = causalOf(d);
  c->padded = f->cu_seqlens_q != nullptr || f->cu_seqlens_kv != nullptr;
  if (c->padded && c->causal && d->bottom_right)
    return "cuda.cudnn FP8: cuDNN's bottom-right causal mask in FP8 needs sm100+ (padding_causal_bottom_right)";
  c->q = bhs(f->q), c->k = bhs(f->k), c->v = bhs(f->v), c->o = bhs(f->o);
  if (cudaGetDevice(&c->device) != cudaSuccess) return "cuda.cudnn FP8: no current CUDA device";
  return "";
}

// The FP8 plans have a handle of their own per (thread, device), apart from the F16 family's.
struct Fp8Plans {};
using Fp8DeviceState = DeviceState<Fp8Plans>;

const ExecutionPlan& planFor(const Library& lib, Fp8DeviceState& state, const Fp8SdpaConfig& c, bool backward) {
  return planFor(state, c.key(backward), [&](abi::Handle handle) {
    return backward ? buildFp8BackwardPlan(lib, handle, c) : buildFp8ForwardPlan(lib, handle, c);
  });
}

void cudaCheck(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw Error(std::string("cuda.cudnn FP8 ") + what + ": " + cudaGetErrorString(err));
}

// The plan's workspace and the per-entry lengths in one stream-ordered allocation.
class Scratch {
 public:
  Scratch(cudaStream_t stream, int64_t workspace, int64_t b) : stream_(stream), lengths_at_((workspace + 255) / 256 * 256) {
    cudaCheck(cudaMallocAsync(&base_, size_t(lengths_at_ + 2 * b * 4 + 256), stream), "workspace");
  }
  ~Scratch() { cudaFreeAsync(base_, stream_); }
  void* workspace() const { return base_; }
  int32_t* seqQ() const { return reinterpret_cast<int32_t*>(static_cast<char*>(base_) + lengths_at_); }
  int32_t* seqKv(int64_t b) const { return seqQ() + b; }

 private:
  cudaStream_t stream_;
  int64_t lengths_at_;
  void* base_ = nullptr;
};

struct VariantPack {
  std::vector<int64_t> uids;
  std::vector<void*> pointers;
  void add(int64_t uid, const void* p) { uids.push_back(uid), pointers.push_back(const_cast<void*>(p)); }
};

void execute(const Library& lib, abi::Handle handle, const ExecutionPlan& plan, const VariantPack& pack,
             void* workspace) {
  Descriptor vp(lib, abi::CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  vp.setInt64s(abi::CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, pack.uids)
      .set(abi::CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, abi::CUDNN_TYPE_VOID_PTR, int64_t(pack.pointers.size()),
           pack.pointers.data())
      .set(abi::CUDNN_ATTR_VARIANT_PACK_WORKSPACE, abi::CUDNN_TYPE_VOID_PTR, 1, &workspace)
      .finalize("variant pack");
  check(lib, lib.execute(handle, plan.plan->raw(), vp.raw()), "execute");
}

// Host scalars of both passes; they must outlive execute().
struct HostScalars {
  float attn_scale, neg_inf = -INFINITY;
};

// Q, K, V, lengths, the attention scale and the forward descales both graphs read.
void addShared(VariantPack& pack, const te_attn_fwd_args* f, const Fp8SdpaConfig& c, const HostScalars& host,
               const Scratch& scratch, float* meta, cudaStream_t stream) {
  pack.add(kFp8UidQ, f->q.data), pack.add(kFp8UidK, f->k.data), pack.add(kFp8UidV, f->v.data);
  pack.add(kFp8UidStats, f->lse);
  pack.add(kFp8UidAttnScale, &host.attn_scale);
  if (c.padded || c.causal) pack.add(kFp8UidNegInf, &host.neg_inf);
  if (c.padded) {
    int32_t* seq_q = scratch.seqQ();
    int32_t* seq_kv = scratch.seqKv(c.b);
    cudaCheck(seqLengths(f->cu_seqlens_q, int(c.b), seq_q, stream, int32_t(c.sq)), "lengths");
    cudaCheck(seqLengths(f->cu_seqlens_kv, int(c.b), seq_kv, stream, int32_t(c.skv)), "lengths");
    pack.add(kFp8UidSeqLenQ, seq_q), pack.add(kFp8UidSeqLenKv, seq_kv);
  }
  pack.add(kFp8UidDescaleQ, meta + TE_FP8_SCALE_INV(TE_FP8_Q));
  pack.add(kFp8UidDescaleK, meta + TE_FP8_SCALE_INV(TE_FP8_K));
  pack.add(kFp8UidDescaleV, meta + TE_FP8_SCALE_INV(TE_FP8_V));
  pack.add(kFp8UidDescaleS, meta + TE_FP8_SCALE_INV(TE_FP8_S));
  pack.add(kFp8UidScaleS, meta + TE_FP8_SCALE(TE_FP8_S));
}

// Padded entries: rows past an entry's length are zero in FP8 (0x00 is +0 in both formats).
__global__ void clearFp8Rows(uint8_t* data, int64_t sb, int64_t ss, int64_t sh, int h, int c, const int32_t* cu,
                             float* lse, int s) {
  const int i = blockIdx.x, e = blockIdx.y;
  if (cu == nullptr || i < cu[e + 1] - cu[e]) return;
  for (int t = threadIdx.x; t < h * c; t += blockDim.x) {
    const int hh = t / c, ch = t % c;
    data[e * sb + i * ss + hh * sh + ch] = 0;
    if (lse != nullptr && ch == 0) lse[(int64_t(e) * h + hh) * s + i] = -INFINITY;
  }
}

void clearRows(const te_out_view& v, int b, int s, int h, int c, const int32_t* cu, float* lse, cudaStream_t stream) {
  if (cu == nullptr || b == 0 || s == 0) return;
  clearFp8Rows<<<dim3(s, b), 256, 0, stream>>>(static_cast<uint8_t*>(v.data), v.b, v.s, v.h, h, c, cu, lse, s);
  cudaCheck(cudaGetLastError(), "row fix-up");
}

}  // namespace
}  // namespace te::cudnn

using namespace te::cudnn;

extern "C" te_status te_cudnn_fp8_explain(const te_attn_desc* d, te_fp8_format fwd, te_fp8_format bwd, int backward,
                                          char* reason, size_t n) {
  return te::guarded([&] {
    if (d == nullptr) return refuse(reason, n, "desc: a te_attn_desc expected");
    const std::string why = whyNot(d, fwd, bwd, backward != 0);
    if (!why.empty()) return refuse(reason, n, why);
    if (reason != nullptr && n > 0) reason[0] = '\0';
    return TE_OK;
  });
}

extern "C" te_status te_cudnn_fp8_forward(const te_attn_desc* d, te_fp8_format fwd, const te_attn_fwd_args* f,
                                          float* meta) {
  return te::guarded([&] {
    if (d == nullptr || f == nullptr) return te::fail(TE_ERR_INVALID_ARGUMENT, "desc, args: expected");
    Fp8SdpaConfig c;
    const std::string bad = configOf(d, fwd, fwd, false, f, meta, &c);
    if (!bad.empty()) return te::fail(TE_ERR_UNSUPPORTED, bad);
    try {
      const Library& lib = *loadLibrary(nullptr);
      auto stream = static_cast<cudaStream_t>(f->stream);
      Fp8DeviceState& state = stateFor<Fp8Plans>(lib, c.device);
      const ExecutionPlan& plan = planFor(lib, state, c, false);
      check(lib, lib.setStream(state.handle, stream), "cudnnSetStream");
      Scratch scratch(stream, plan.workspace_bytes, c.b);
      HostScalars host{d->scale};
      VariantPack pack;
      addShared(pack, f, c, host, scratch, meta, stream);
      pack.add(kFp8UidO, f->o.data);
      pack.add(kFp8UidScaleO, meta + TE_FP8_SCALE(TE_FP8_O));
      pack.add(kFp8UidAmaxS, meta + TE_FP8_AMAX(TE_FP8_S));
      pack.add(kFp8UidAmaxO, meta + TE_FP8_AMAX(TE_FP8_O));
      execute(lib, state.handle, plan, pack, scratch.workspace());
      clearRows(f->o, d->b, d->sq, d->h, d->dv, f->cu_seqlens_q, f->lse, stream);
      return TE_OK;
    } catch (const Error& e) {
      return te::fail(TE_ERR_CUDA, e.what());
    }
  });
}

extern "C" te_status te_cudnn_fp8_backward(const te_attn_desc* d, te_fp8_format fwd, te_fp8_format bwd,
                                           const te_attn_bwd_args* g, float* meta) {
  return te::guarded([&] {
    if (d == nullptr || g == nullptr) return te::fail(TE_ERR_INVALID_ARGUMENT, "desc, args: expected");
    const te_attn_fwd_args* f = &g->fwd;
    Fp8SdpaConfig c;
    std::string bad = configOf(d, fwd, bwd, true, f, meta, &c);
    if (bad.empty() && g->dbias != nullptr) bad = "cuda.cudnn FP8 computes no bias gradient";
    if (bad.empty()) bad = checkView("dO", g->d_o.data, g->d_o.b, g->d_o.s, g->d_o.h, g->d_o.c);
    const std::pair<const char*, const te_out_view*> grads[] = {{"dq", &g->dq}, {"dk", &g->dk}, {"dv", &g->dv}};
    for (auto [name, v] : grads)
      if (bad.empty()) bad = checkView(name, v->data, v->b, v->s, v->h, v->c);
    if (!bad.empty()) return te::fail(TE_ERR_UNSUPPORTED, bad);
    c.d_o = bhs(g->d_o), c.dq = bhs(g->dq), c.dk = bhs(g->dk), c.dv_out = bhs(g->dv);
    try {
      const Library& lib = *loadLibrary(nullptr);
      auto stream = static_cast<cudaStream_t>(f->stream);
      Fp8DeviceState& state = stateFor<Fp8Plans>(lib, c.device);
      const ExecutionPlan& plan = planFor(lib, state, c, true);
      check(lib, lib.setStream(state.handle, stream), "cudnnSetStream");
      Scratch scratch(stream, plan.workspace_bytes, c.b);
      HostScalars host{d->scale};
      VariantPack pack;
      addShared(pack, f, c, host, scratch, meta, stream);
      pack.add(kFp8UidO, f->o.data), pack.add(kFp8UidDO, g->d_o.data);
      pack.add(kFp8UidDQ, g->dq.data), pack.add(kFp8UidDK, g->dk.data), pack.add(kFp8UidDV, g->dv.data);
      pack.add(kFp8UidDescaleO, meta + TE_FP8_SCALE_INV(TE_FP8_O));
      pack.add(kFp8UidDescaleDO, meta + TE_FP8_SCALE_INV(TE_FP8_DO));
      pack.add(kFp8UidDescaleDP, meta + TE_FP8_SCALE_INV(TE_FP8_DP));
      pack.add(kFp8UidScaleDP, meta + TE_FP8_SCALE(TE_FP8_DP));
      pack.add(kFp8UidScaleDQ, meta + TE_FP8_SCALE(TE_FP8_DQ));
      pack.add(kFp8UidScaleDK, meta + TE_FP8_SCALE(TE_FP8_DK));
      pack.add(kFp8UidScaleDV, meta + TE_FP8_SCALE(TE_FP8_DV));
      pack.add(kFp8UidAmaxDP, meta + TE_FP8_AMAX(TE_FP8_DP));
      pack.add(kFp8UidAmaxDQ, meta + TE_FP8_AMAX(TE_FP8_DQ));
      pack.add(kFp8UidAmaxDK, meta + TE_FP8_AMAX(TE_FP8_DK));
      pack.add(kFp8UidAmaxDV, meta + TE_FP8_AMAX(TE_FP8_DV));
      execute(lib, state.handle, plan, pack, scratch.workspace());
      clearRows(g->dq, d->b, d->sq, d->h, d->d, f->cu_seqlens_q, nullptr, stream);
      clearRows(g->dk, d->b, d->skv, d->hg, d->d, f->cu_seqlens_kv, nullptr, stream);
      clearRows(g->dv, d->b, d->skv, d->hg, d->dv, f->cu_seqlens_kv, nullptr, stream);
      return TE_OK;
    } catch (const Error& e) {
      return te::fail(TE_ERR_CUDA, e.what());
    }
  });
}
