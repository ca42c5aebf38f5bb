// The kernels' AttentionArgs of a te_attn_* call (descriptor + argument blocks), shared by the CUDA
// families; and the reason strings the C API hands back.
#pragma once
#include <cuda_runtime.h>
#include <cstring>
#include <string>
#include <utility>

#include "../common/attention_args.h"
#include "device_blocks.h"
#include "te/te_attention.h"

namespace te::cuda_family {

inline te_status refuse(char* reason, size_t n, const std::string& why) {
  if (reason != nullptr && n > 0) {
    std::strncpy(reason, why.c_str(), n - 1);
    reason[n - 1] = '\0';
  }
  return TE_ERR_UNSUPPORTED;
}

inline int elem_of(te_dtype t) {
  return t == TE_F16 ? te_cuda::kF16 : t == TE_BF16 ? te_cuda::kBF16 : te_cuda::kF32;
}

inline te_cuda::Strides strides_of(const te_view& v) { return {v.b, v.s, v.h}; }
inline te_cuda::Strides strides_of(const te_out_view& v) { return {v.b, v.s, v.h}; }

// "" when p is null or device (or managed) memory of the current device, else why not: the CUDA kernels
// dereference every pointer of the argument block on the GPU, so host arrays are refused instead of
// faulting, and memory of another device instead of being read across devices. A pointer into a live
// te_device_alloc block (every DeviceTensor) is known without a driver call (device_blocks.h); only other
// pointers are asked about with cudaPointerGetAttributes.
inline std::string device_pointer(const char* name, const void* p) {
  if (p == nullptr) return "";
  int device = te::block_device != nullptr ? te::block_device(p) : -1;
  if (device < 0) {
    cudaPointerAttributes attr{};
    if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
      cudaGetLastError();
      attr.type = cudaMemoryTypeUnregistered;
    }
    if (attr.type == cudaMemoryTypeManaged) return "";
    if (attr.type != cudaMemoryTypeDevice)
      return std::string(name) + ": device memory expected (a DeviceTensor) for the CUDA kernel families";
    device = attr.device;
  }
  int current = 0;
  if (cudaGetDevice(&current) != cudaSuccess) {
    cudaGetLastError();
    return std::string(name) + ": no current CUDA device";
  }
  if (device != current)
    return std::string(name) + ": memory of device " + std::to_string(device) + ", but the call runs on device " +
           std::to_string(current) + " (the current device)";
  return "";
}

// Forward arguments; "" or why the call cannot be expressed.
inline std::string fwd_args(const te_attn_desc* d, const te_attn_fwd_args* f, te_cuda::AttentionArgs* a) {
  std::memset(a, 0, sizeof *a);
  if (f->q.c != 1 || f->k.c != 1 || f->v.c != 1 || f->o.c != 1)
    return "the CUDA kernels need a contiguous head dim (channel stride 1)";
  if (d->bias_type == TE_ALIBI && f->alibi_slopes == nullptr)
    return "the CUDA kernels need explicit ALiBi slopes on the device (the caller computes TE's default slopes)";
  a->elem = elem_of(d->dtype);
  a->q = f->q.data, a->k = f->k.data, a->v = f->v.data, a->o = f->o.data, a->lse = f->lse;
  a->q_st = strides_of(f->q), a->k_st = strides_of(f->k), a->v_st = strides_of(f->v), a->o_st = strides_of(f->o);
  a->b = d->b, a->h = d->h, a->hkv = d->hg, a->d = d->d, a->dv = d->dv, a->sq = d->sq, a->skv = d->skv;
  a->cu_q = f->cu_seqlens_q, a->cu_kv = f->cu_seqlens_kv;
  a->thd = d->format == TE_THD;
  a->tok_q = f->cu_seqlens_q_padded ? f->cu_seqlens_q_padded : f->cu_seqlens_q;
  a->tok_kv = f->cu_seqlens_kv_padded ? f->cu_seqlens_kv_padded : f->cu_seqlens_kv;
  a->scale = d->scale;
  a->causal = d->causal, a->bottom_right = d->bottom_right;
  a->window_left = d->window_left, a->window_right = d->window_right;
  if (d->bias_type == TE_ALIBI) a->alibi = f->alibi_slopes, a->alibi_bstride = d->alibi_per_batch ? d->h : 0;
  if (d->bias_type == TE_PRE_SCALE_BIAS || d->bias_type == TE_POST_SCALE_BIAS) {
    a->bias_kind = d->bias_type == TE_PRE_SCALE_BIAS ? te_cuda::kPreScaleBias : te_cuda::kPostScaleBias;
    a->bias = f->bias;
    // Extents of 1 (11ss, 1hss, b1ss) broadcast: their stride must not move the pointer.
    a->bias_st = {d->bias_b > 1 ? f->bias_sb : 0, f->bias_ss, d->bias_h > 1 ? f->bias_sh : 0};
  }
  if (d->arbitrary_mask) {
    const int64_t plane = int64_t(d->sq) * d->skv;
    a->mask = f->mask;
    a->mask_sh = f->mask_h > 1 ? plane : 0;
    a->mask_sb = f->mask_b > 1 ? plane * f->mask_h : 0;
  }
  a->softmax = int(d->softmax_type);
  a->softmax_offset = f->softmax_offset;
  a->dropout = d->dropout, a->seed = d->dropout_seed, a->rng_offset = d->dropout_offset;
  a->deterministic = d->deterministic;
  const std::pair<const char*, const void*> pointers[] = {
      {"q", a->q}, {"k", a->k}, {"v", a->v}, {"o", a->o}, {"lse", a->lse}, {"cu_seqlens_q", a->cu_q},
      {"cu_seqlens_kv", a->cu_kv}, {"cu_seqlens_q_padded", a->tok_q}, {"cu_seqlens_kv_padded", a->tok_kv},
      {"bias", a->bias}, {"alibi_slopes", a->alibi}, {"mask", a->mask}, {"softmax_offset", a->softmax_offset}};
  for (const auto& [name, p] : pointers) {
    std::string bad = device_pointer(name, p);
    if (!bad.empty()) return bad;
  }
  return "";
}

// Backward arguments on top of fwd_args; the bias gradient only where the family computes one.
inline std::string bwd_args(const te_attn_desc* d, const te_attn_bwd_args* g, te_cuda::AttentionArgs* a,
                            bool computes_dbias = false) {
  std::string bad = fwd_args(d, &g->fwd, a);
  if (!bad.empty()) return bad;
  if (g->dbias != nullptr) {
    if (!computes_dbias) return "this CUDA kernel family computes no bias gradient";
    if (d->bias_type != TE_PRE_SCALE_BIAS && d->bias_type != TE_POST_SCALE_BIAS)
      return "dbias: a bias gradient needs a pre_scale_bias or post_scale_bias";
    if (d->bias_dtype != d->dtype) return "dbias: the bias gradient is written in the dtype of q/k/v";
    const int64_t need = int64_t(d->bias_b) * d->bias_h * d->sq * d->skv;
    if (g->dbias_numel < need)
      return "dbias: " + std::to_string(g->dbias_numel) + " elements, expected [bias_b, bias_h, sq, skv] = " +
             std::to_string(need);
    a->dbias = g->dbias, a->dbias_b = d->bias_b, a->dbias_h = d->bias_h;
  }
  if (g->d_o.c != 1 || g->dq.c != 1 || g->dk.c != 1 || g->dv.c != 1)
    return "the CUDA kernels need contiguous head dims of dO/dq/dk/dv";
  a->o = g->fwd.o.data;
  a->d_o = g->d_o.data, a->do_st = strides_of(g->d_o);
  a->dq = g->dq.data, a->dk = g->dk.data, a->dv_out = g->dv.data;
  a->dq_st = strides_of(g->dq), a->dk_st = strides_of(g->dk), a->dv_st = strides_of(g->dv);
  a->dsoftmax_offset = g->d_softmax_offset;
  const std::pair<const char*, const void*> pointers[] = {
      {"dO", a->d_o}, {"dq", a->dq}, {"dk", a->dk}, {"dv", a->dv_out}, {"d_softmax_offset", a->dsoftmax_offset},
      {"dbias", a->dbias}};
  for (const auto& [name, p] : pointers) {
    std::string b = device_pointer(name, p);
    if (!b.empty()) return b;
  }
  return "";
}

}  // namespace te::cuda_family
