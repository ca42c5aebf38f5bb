// cuda.unfused: attention as separate kernels over an fp32 [b, h, sq, skv] score buffer, the way TE's
// UnfusedDotProductAttention runs it: scores (scale, bias, ALiBi, masks) -> softmax (with sinks, lse)
// -> dropout -> P V; backward: dZ = dO V^T -> dS -> dQ = dS K, dK = dS^T Q, dV = Z^T dO. Plain CUDA
// cores, any head dim, fp32/fp16/bf16; every sum runs in a fixed order, so results are deterministic.
#pragma once
#include "../common/attention_math.cuh"

namespace te_cuda {

// Buffers of the unfused pipeline (fp32, device): P and Z = dropout(P) [b, h, sq, skv]; in backward
// dS reuses a third such buffer and Dvec [b, h, sq].
struct UnfusedBuffers {
  float* p;
  float* z;
  float* ds;
  float* dvec;
};

__device__ __forceinline__ int64_t score_index(const AttentionArgs& a, int e, int hh, int i, int j) {
  return ((int64_t(e) * a.h + hh) * a.sq + i) * a.skv + j;
}

template <typename T>
__device__ __forceinline__ const T* row_ptr(const void* base, const Strides& st, const Entry& en, bool is_q, int e,
                                            int head, int pos) {
  return static_cast<const T*>(base) + e * st.b + head * st.h + ((is_q ? en.q_row0 : en.kv_row0) + pos) * st.s;
}

// Grid (ceil(skv / 128), sq, b * h): logits in log2 units (-inf where masked) into buf.p.
template <typename T>
__global__ void unfused_scores_kernel(const AttentionArgs a, UnfusedBuffers buf) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x, i = blockIdx.y;
  const int e = blockIdx.z / a.h, hh = blockIdx.z % a.h, hk = hh / (a.h / a.hkv);
  if (j >= a.skv) return;
  const Entry en = entry_of(a, e);
  int lo, hi;
  allowed_keys(a, en, i, lo, hi);
  float x = -INFINITY;
  const bool masked_out = a.mask && a.mask[e * a.mask_sb + hh * a.mask_sh + int64_t(i) * a.skv + j];
  if (j >= lo && j < hi && !masked_out) {
    const T* q = row_ptr<T>(a.q, a.q_st, en, true, e, hh, i);
    const T* k = row_ptr<T>(a.k, a.k_st, en, false, e, hk, j);
    float dot = 0.f;
    for (int c = 0; c < a.d; ++c) dot += to_f32(q[c]) * to_f32(k[c]);
    x = logit2<T>(a, en, e, hh, i, j, dot);
  }
  buf.p[score_index(a, e, hh, i, j)] = x;
}

__device__ __forceinline__ float block_reduce(float v, bool is_max) {
  __shared__ float part[32];
  for (int off = 16; off > 0; off >>= 1) {
    const float o = __shfl_xor_sync(0xffffffffu, v, off);
    v = is_max ? fmaxf(v, o) : v + o;
  }
  const int warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  __syncthreads();
  if ((threadIdx.x & 31) == 0) part[warp] = v;
  __syncthreads();
  v = is_max ? -INFINITY : 0.f;
  for (int w = 0; w < nwarps; ++w) v = is_max ? fmaxf(v, part[w]) : v + part[w];
  return v;
}

// Grid (sq, b * h), 256 threads: P = softmax (with the sink logit), Z = dropout(P), lse.
__global__ void unfused_softmax_kernel(const AttentionArgs a, UnfusedBuffers buf, bool write_lse) {
  const int i = blockIdx.x, e = blockIdx.y / a.h, hh = blockIdx.y % a.h;
  float* p = buf.p + score_index(a, e, hh, i, 0);
  float* z = buf.z + score_index(a, e, hh, i, 0);
  const float sink = sink_logit2(a, hh);
  float m = sink;
  for (int j = threadIdx.x; j < a.skv; j += blockDim.x) m = fmaxf(m, p[j]);
  m = block_reduce(m, true);
  const float use = m == -INFINITY ? 0.f : m;
  float l = 0.f;
  for (int j = threadIdx.x; j < a.skv; j += blockDim.x) l += exp2f(p[j] - use);
  l = block_reduce(l, false) + (sink == -INFINITY ? 0.f : exp2f(sink - use));
  const float inv = l > 0.f ? 1.f / l : 0.f;
  const uint32_t threshold = a.dropout > 0.f ? dropout_threshold(a.dropout) : 0u;
  const float keep_scale = 1.f / (1.f - a.dropout);
  for (int j = threadIdx.x; j < a.skv; j += blockDim.x) {
    const float pj = exp2f(p[j] - use) * inv;
    p[j] = pj;
    float zj = pj;
    if (threshold) zj = (dropout_keep_pair(a, threshold, e, hh, i, j & ~1) >> (j & 1)) & 1u ? pj * keep_scale : 0.f;
    z[j] = zj;
  }
  if (write_lse && threadIdx.x == 0)
    a.lse[(int64_t(e) * a.h + hh) * a.sq + i] = l > 0.f ? (m + log2f(l)) * kLn2 : -INFINITY;
}

// Grid (sq, b * h), threads over dv: O = Z V (rows past a length: zeros, none for thd).
template <typename T>
__global__ void unfused_pv_kernel(const AttentionArgs a, UnfusedBuffers buf) {
  const int i = blockIdx.x, e = blockIdx.y / a.h, hh = blockIdx.y % a.h, hk = hh / (a.h / a.hkv);
  const Entry en = entry_of(a, e);
  if (i >= en.lq && a.thd) return;
  const float* z = buf.z + score_index(a, e, hh, i, 0);
  T* o = static_cast<T*>(a.o) + e * a.o_st.b + hh * a.o_st.h + (en.q_row0 + i) * a.o_st.s;
  for (int c = threadIdx.x; c < a.dv; c += blockDim.x) {
    float acc = 0.f;
    if (i < en.lq)
      for (int j = 0; j < en.lk; ++j) acc += z[j] * to_f32(row_ptr<T>(a.v, a.v_st, en, false, e, hk, j)[c]);
    o[c] = from_f32<T>(acc);
  }
}

// Grid (sq, b * h), 256 threads: dS = P * (dZ * keep / (1 - p) - Dvec) with dZ = dO V^T; Dvec too.
template <typename T>
__global__ void unfused_ds_kernel(const AttentionArgs a, UnfusedBuffers buf) {
  const int i = blockIdx.x, e = blockIdx.y / a.h, hh = blockIdx.y % a.h, hk = hh / (a.h / a.hkv);
  const Entry en = entry_of(a, e);
  const int64_t row = score_index(a, e, hh, i, 0);
  float dvec = 0.f;
  if (i < en.lq) {
    const T* d_o = row_ptr<T>(a.d_o, a.do_st, en, true, e, hh, i);
    const T* o = static_cast<const T*>(a.o) + e * a.o_st.b + hh * a.o_st.h + (en.q_row0 + i) * a.o_st.s;
    for (int c = threadIdx.x; c < a.dv; c += blockDim.x) dvec += to_f32(d_o[c]) * to_f32(o[c]);
  }
  dvec = block_reduce(dvec, false);
  if (threadIdx.x == 0) buf.dvec[(int64_t(e) * a.h + hh) * a.sq + i] = dvec;
  const float keep_scale = 1.f / (1.f - a.dropout);
  for (int j = threadIdx.x; j < a.skv; j += blockDim.x) {
    const float p = buf.p[row + j];
    float ds = 0.f;
    if (p > 0.f && i < en.lq && j < en.lk) {
      const T* d_o = row_ptr<T>(a.d_o, a.do_st, en, true, e, hh, i);
      const T* v = row_ptr<T>(a.v, a.v_st, en, false, e, hk, j);
      float dz = 0.f;
      for (int c = 0; c < a.dv; ++c) dz += to_f32(d_o[c]) * to_f32(v[c]);
      const float dp = a.dropout > 0.f ? (buf.z[row + j] != 0.f ? dz * keep_scale : 0.f) : dz;
      ds = p * (dp - dvec);
    }
    buf.ds[row + j] = ds;
  }
}

// Grid (sq, b * h), threads over d: dQ = scale * dS K.
template <typename T>
__global__ void unfused_dq_kernel(const AttentionArgs a, UnfusedBuffers buf) {
  const int i = blockIdx.x, e = blockIdx.y / a.h, hh = blockIdx.y % a.h, hk = hh / (a.h / a.hkv);
  const Entry en = entry_of(a, e);
  if (i >= en.lq && a.thd) return;
  const float* ds = buf.ds + score_index(a, e, hh, i, 0);
  T* dq = static_cast<T*>(a.dq) + e * a.dq_st.b + hh * a.dq_st.h + (en.q_row0 + i) * a.dq_st.s;
  for (int c = threadIdx.x; c < a.d; c += blockDim.x) {
    float acc = 0.f;
    if (i < en.lq)
      for (int j = 0; j < en.lk; ++j) acc += ds[j] * to_f32(row_ptr<T>(a.k, a.k_st, en, false, e, hk, j)[c]);
    dq[c] = from_f32<T>(acc * a.scale);
  }
}

// Grid (skv, b * hkv), threads over max(d, dv): dK = scale * dS^T Q, dV = Z^T dO, summed over the
// query heads of the kv head's group (GQA without replicated K/V, no atomics).
template <typename T>
__global__ void unfused_dkdv_kernel(const AttentionArgs a, UnfusedBuffers buf) {
  const int j = blockIdx.x, e = blockIdx.y / a.hkv, hk = blockIdx.y % a.hkv, group = a.h / a.hkv;
  const Entry en = entry_of(a, e);
  if (j >= en.lk && a.thd) return;
  T* dk = static_cast<T*>(a.dk) + e * a.dk_st.b + hk * a.dk_st.h + (en.kv_row0 + j) * a.dk_st.s;
  T* dv = static_cast<T*>(a.dv_out) + e * a.dv_st.b + hk * a.dv_st.h + (en.kv_row0 + j) * a.dv_st.s;
  for (int c = threadIdx.x; c < max(a.d, a.dv); c += blockDim.x) {
    float acc_k = 0.f, acc_v = 0.f;
    if (j < en.lk)
      for (int hh = hk * group; hh < (hk + 1) * group; ++hh)
        for (int i = 0; i < en.lq; ++i) {
          const int64_t s = score_index(a, e, hh, i, j);
          if (c < a.d) acc_k += buf.ds[s] * to_f32(row_ptr<T>(a.q, a.q_st, en, true, e, hh, i)[c]);
          if (c < a.dv) acc_v += buf.z[s] * to_f32(row_ptr<T>(a.d_o, a.do_st, en, true, e, hh, i)[c]);
        }
    if (c < a.d) dk[c] = from_f32<T>(acc_k * a.scale);
    if (c < a.dv) dv[c] = from_f32<T>(acc_v);
  }
}

// Grid (ceil(skv / 128), sq, dbias_b * dbias_h): dbias = dS (post_scale_bias) or scale * dS
// (pre_scale_bias, added before the scale), summed over the batch entries and heads the bias broadcasts
// over (extent 1), in a fixed order.
template <typename T>
__global__ void unfused_dbias_kernel(const AttentionArgs a, UnfusedBuffers buf) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x, i = blockIdx.y;
  const int eb = blockIdx.z / a.dbias_h, hb = blockIdx.z % a.dbias_h;
  if (j >= a.skv) return;
  const int e0 = a.dbias_b == 1 ? 0 : eb, e1 = a.dbias_b == 1 ? a.b : eb + 1;
  const int h0 = a.dbias_h == 1 ? 0 : hb, h1 = a.dbias_h == 1 ? a.h : hb + 1;
  float acc = 0.f;
  for (int e = e0; e < e1; ++e)
    for (int hh = h0; hh < h1; ++hh) acc += buf.ds[score_index(a, e, hh, i, j)];
  if (a.bias_kind == kPreScaleBias) acc *= a.scale;
  static_cast<T*>(a.dbias)[(int64_t(blockIdx.z) * a.sq + i) * a.skv + j] = from_f32<T>(acc);
}

// One block per head: d(offset_h) = -sum over rows of P_sink * Dvec (learnable softmax), fixed order.
__global__ void unfused_dsink_kernel(const AttentionArgs a, UnfusedBuffers buf) {
  const int hh = blockIdx.x;
  float acc = 0.f;
  for (int64_t r = threadIdx.x; r < int64_t(a.b) * a.sq; r += blockDim.x) {
    const int e = int(r / a.sq), i = int(r % a.sq);
    const int64_t stat = (int64_t(e) * a.h + hh) * a.sq + i;
    const float lse = a.lse[stat];
    if (lse != -INFINITY) acc -= expf(a.softmax_offset[hh] - lse) * buf.dvec[stat];
  }
  acc = block_reduce(acc, false);
  if (threadIdx.x == 0) a.dsoftmax_offset[hh] = acc;
}

}  // namespace te_cuda
