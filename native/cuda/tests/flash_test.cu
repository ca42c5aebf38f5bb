// Standalone test and benchmark driver of the cuda.flash and cuda.unfused kernels (nvcc alone, no Node):
//   flash_test check [--json FILE] [--no-unfused]   fresh random inputs per case, poisoned outputs, float64 CPU
//                                    reference; TE_FLASH_FWD / TE_FLASH_BWD in the environment pick the default kernels
//   flash_test bench [NAME] [--json FILE] [--variants a,b]   forward and forward+backward times (median of
//                                    cudaEvent timings) of the kernel choices in kBenchVariants
// Exit status 1 when any case fails.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>
#include "../flash/flash_api.h"
#include "../unfused/unfused_api.h"
#include "attention_reference.h"

using te_cuda::AttentionArgs;

#define CK(x)                                                                                        \
  do {                                                                                               \
    cudaError_t err_ = (x);                                                                          \
    if (err_ != cudaSuccess) {                                                                       \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(err_));           \
      exit(2);                                                                                       \
    }                                                                                                \
  } while (0)

struct Case {
  std::string name;
  int elem;  // te_cuda::kF16 / kBF16
  int b, h, hkv, d, dv, sq, skv;
  bool causal = false, bottom_right = false;
  int left = -1, right = -1;
  std::string format = "bshd";  // bshd, sbhd, thd
  bool varlen = false;          // random per-entry lengths (cu_seqlens)
  bool alibi = false;
  int softmax = 0;
  bool bias = false;
  double dropout = 0;
};

static double round_to(int elem, double x) {
  return elem == te_cuda::kF16 ? double(__half2float(__float2half_rn(float(x))))
                               : double(__bfloat162float(__float2bfloat16_rn(float(x))));
}
static uint16_t bits_of(int elem, double x) {
  if (elem == te_cuda::kF16) {
    __half h = __float2half_rn(float(x));
    return *reinterpret_cast<uint16_t*>(&h);
  }
  __nv_bfloat16 h = __float2bfloat16_rn(float(x));
  return *reinterpret_cast<uint16_t*>(&h);
}
static double value_of(int elem, uint16_t u) {
  if (elem == te_cuda::kF16) return __half2float(*reinterpret_cast<__half*>(&u));
  return __bfloat162float(*reinterpret_cast<__nv_bfloat16*>(&u));
}

// Storage of one [entries][positions][heads][dim] tensor in a format, with strides.
struct Layout {
  te_cuda::Strides st;
  size_t elems;
  std::vector<int> tok;  // thd: first token of each entry
};
static Layout layout_of(const std::string& fmt, int b, int s, int h, int d, const std::vector<int>& lens) {
  Layout L;
  if (fmt == "bshd") L.st = {int64_t(s) * h * d, int64_t(h) * d, d}, L.elems = size_t(b) * s * h * d;
  else if (fmt == "sbhd") L.st = {int64_t(h) * d, int64_t(b) * h * d, d}, L.elems = size_t(b) * s * h * d;
  else {
    L.st = {0, int64_t(h) * d, d};
    int t = 0;
    for (int e = 0; e < b; ++e) L.tok.push_back(t), t += lens[e];
    L.tok.push_back(t);
    L.elems = size_t(std::max(t, 1)) * h * d;
  }
  return L;
}
static size_t offset_of(const Layout& L, int e, int i, int hh) {
  const int64_t row0 = L.tok.empty() ? 0 : L.tok[e];
  return size_t(e * L.st.b + (row0 + i) * L.st.s + hh * L.st.h);
}

struct DevTensor {
  void* p = nullptr;
  size_t bytes = 0;
  explicit DevTensor(size_t n) : bytes(n) { CK(cudaMalloc(&p, std::max<size_t>(n, 16))); }
  ~DevTensor() { cudaFree(p); }
};

// Dense [e][i][h][c] host values -> device storage of a layout (values already rounded).
static void upload(DevTensor& t, int elem, const Layout& L, const std::vector<double>& x, int b, int s, int h, int c,
                   const std::vector<int>& lens) {
  std::vector<uint16_t> buf(L.elems, 0);
  for (int e = 0; e < b; ++e)
    for (int i = 0; i < (L.tok.empty() ? s : lens[e]); ++i)
      for (int hh = 0; hh < h; ++hh)
        for (int cc = 0; cc < c; ++cc) buf[offset_of(L, e, i, hh) + cc] = bits_of(elem, x[((size_t(e) * s + i) * h + hh) * c + cc]);
  CK(cudaMemcpy(t.p, buf.data(), buf.size() * 2, cudaMemcpyHostToDevice));
}

struct Err {
  double max_err = 0, max_ref = 0;
  bool nan = false;
  double rel() const { return nan ? INFINITY : max_err / std::max(max_ref, 1e-6); }
};
// Compares device storage with the dense reference on valid rows; rows past an entry's end (non-thd)
// must be exactly zero.
static Err compare(const DevTensor& t, int elem, const Layout& L, const std::vector<double>& ref, int b, int s, int h,
                   int c, const std::vector<int>& lens) {
  std::vector<uint16_t> buf(L.elems);
  CK(cudaMemcpy(buf.data(), t.p, buf.size() * 2, cudaMemcpyDeviceToHost));
  Err E;
  for (int e = 0; e < b; ++e)
    for (int i = 0; i < (L.tok.empty() ? s : lens[e]); ++i)
      for (int hh = 0; hh < h; ++hh)
        for (int cc = 0; cc < c; ++cc) {
          const double got = value_of(elem, buf[offset_of(L, e, i, hh) + cc]);
          const double want = i < lens[e] ? ref[((size_t(e) * s + i) * h + hh) * c + cc] : 0.0;
          if (std::isnan(got)) E.nan = true;
          E.max_err = std::max(E.max_err, std::fabs(got - want));
          E.max_ref = std::max(E.max_ref, std::fabs(want));
        }
  return E;
}

struct Problem {
  Case c;
  std::vector<int> lq, lk;
  Layout Lq, Lk, Lv, Lo, Ldq, Ldk, Ldv;
  std::vector<double> q, k, v, dout, bias, alibi, offset;
};

// fast_inputs (the bench): uniform values of unit variance instead of normal ones; drawing ~10^8
// normals for the long configs took most of the GPU job's time.
static Problem make_problem(const Case& c, std::mt19937_64& rng, bool fast_inputs = false) {
  Problem P;
  P.c = c;
  std::uniform_int_distribution<int> lenq(1, c.sq), lenk(1, c.skv);
  for (int e = 0; e < c.b; ++e) {
    P.lq.push_back(c.varlen ? lenq(rng) : c.sq);
    P.lk.push_back(c.varlen ? lenk(rng) : c.skv);
  }
  if (c.varlen) P.lq[0] = c.sq, P.lk[0] = c.skv;  // one full-length entry keeps the max meaningful
  P.Lq = layout_of(c.format, c.b, c.sq, c.h, c.d, P.lq);
  P.Lo = layout_of(c.format, c.b, c.sq, c.h, c.dv, P.lq);
  P.Lk = layout_of(c.format, c.b, c.skv, c.hkv, c.d, P.lk);
  P.Lv = layout_of(c.format, c.b, c.skv, c.hkv, c.dv, P.lk);
  std::normal_distribution<double> N(0, 1);
  // Chunks of 2^20 values, each from its own generator seeded by rng, filled in parallel: the long
  // bench configs need ~10^8 values, minutes for one generator on the GPU machine's job budget.
  auto fill = [&](std::vector<double>& x, size_t n, double sd) {
    x.resize(n);
    constexpr size_t kChunk = size_t(1) << 20;
    const size_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<uint64_t> seeds(chunks);
    for (auto& z : seeds) z = rng();
#pragma omp parallel for schedule(dynamic)
    for (long long ch = 0; ch < (long long)chunks; ++ch) {
      std::mt19937_64 local(seeds[ch]);
      std::normal_distribution<double> Nl(0, 1);
      const double to_unit = 3.4641016151377544 / 18446744073709551616.0;  // sqrt(12) / 2^64
      for (size_t i = size_t(ch) * kChunk; i < std::min(n, size_t(ch + 1) * kChunk); ++i)
        x[i] = round_to(c.elem, (fast_inputs ? double(local()) * to_unit - 1.7320508075688772 : Nl(local)) * sd);
    }
  };
  fill(P.q, size_t(c.b) * c.sq * c.h * c.d, 1);
  fill(P.k, size_t(c.b) * c.skv * c.hkv * c.d, 1);
  fill(P.v, size_t(c.b) * c.skv * c.hkv * c.dv, 1);
  fill(P.dout, size_t(c.b) * c.sq * c.h * c.dv, 1);
  if (c.bias) fill(P.bias, size_t(c.h) * c.sq * c.skv, 1);
  if (c.alibi)
    for (int hh = 0; hh < c.h; ++hh) P.alibi.push_back(std::pow(2.0, -8.0 * (hh + 1) / c.h));
  if (c.softmax == 2)
    for (int hh = 0; hh < c.h; ++hh) P.offset.push_back(N(rng));
  return P;
}

struct DeviceProblem {
  DevTensor q, k, v, o, lse, dout, dq, dk, dv, cu_q, cu_kv, tok_q, tok_kv, bias, alibi, offset, doffset, ws;
  AttentionArgs a{};
  DeviceProblem(Problem& P)
      : q(P.Lq.elems * 2), k(P.Lk.elems * 2), v(P.Lv.elems * 2), o(P.Lo.elems * 2),
        lse(size_t(P.c.b) * P.c.h * P.c.sq * 4), dout(P.Lo.elems * 2), dq(P.Lq.elems * 2), dk(P.Lk.elems * 2),
        dv(P.Lv.elems * 2), cu_q((P.c.b + 1) * 4), cu_kv((P.c.b + 1) * 4), tok_q((P.c.b + 1) * 4),
        tok_kv((P.c.b + 1) * 4), bias(P.bias.size() * 2), alibi(P.alibi.size() * 4), offset(P.c.h * 4),
        doffset(P.c.h * 4), ws(16) {
    const Case& c = P.c;
    upload(q, c.elem, P.Lq, P.q, c.b, c.sq, c.h, c.d, P.lq);
    upload(k, c.elem, P.Lk, P.k, c.b, c.skv, c.hkv, c.d, P.lk);
    upload(v, c.elem, P.Lv, P.v, c.b, c.skv, c.hkv, c.dv, P.lk);
    upload(dout, c.elem, P.Lo, P.dout, c.b, c.sq, c.h, c.dv, P.lq);
    std::vector<int> cq(1, 0), ck(1, 0);
    for (int e = 0; e < c.b; ++e) cq.push_back(cq.back() + P.lq[e]), ck.push_back(ck.back() + P.lk[e]);
    CK(cudaMemcpy(cu_q.p, cq.data(), cq.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(cu_kv.p, ck.data(), ck.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(tok_q.p, cq.data(), cq.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(tok_kv.p, ck.data(), ck.size() * 4, cudaMemcpyHostToDevice));
    a.elem = c.elem;
    a.q = q.p, a.k = k.p, a.v = v.p, a.o = o.p, a.lse = static_cast<float*>(lse.p);
    a.q_st = P.Lq.st, a.k_st = P.Lk.st, a.v_st = P.Lv.st, a.o_st = P.Lo.st;
    a.b = c.b, a.h = c.h, a.hkv = c.hkv, a.d = c.d, a.dv = c.dv, a.sq = c.sq, a.skv = c.skv;
    const bool lens = c.varlen || c.format == "thd";
    a.cu_q = lens ? static_cast<int*>(cu_q.p) : nullptr;
    a.cu_kv = lens ? static_cast<int*>(cu_kv.p) : nullptr;
    a.thd = c.format == "thd";
    a.tok_q = static_cast<int*>(tok_q.p), a.tok_kv = static_cast<int*>(tok_kv.p);
    a.scale = float(1.0 / std::sqrt(double(c.d)));
    a.causal = c.causal, a.window_left = c.left, a.window_right = c.right, a.bottom_right = c.bottom_right;
    if (c.alibi) {
      std::vector<float> s(P.alibi.begin(), P.alibi.end());
      CK(cudaMemcpy(alibi.p, s.data(), s.size() * 4, cudaMemcpyHostToDevice));
      a.alibi = static_cast<float*>(alibi.p), a.alibi_bstride = 0;
    }
    if (c.bias) {
      std::vector<uint16_t> bb(P.bias.size());
      for (size_t i = 0; i < bb.size(); ++i) bb[i] = bits_of(c.elem, P.bias[i]);
      CK(cudaMemcpy(bias.p, bb.data(), bb.size() * 2, cudaMemcpyHostToDevice));
      a.bias_kind = te_cuda::kPostScaleBias, a.bias = bias.p;
      a.bias_st = {0, c.skv, int64_t(c.sq) * c.skv};  // [1, h, sq, skv]: {b, s (row i), h}
    }
    a.softmax = c.softmax;
    if (c.softmax == 2) {
      std::vector<float> s(P.offset.begin(), P.offset.end());
      CK(cudaMemcpy(offset.p, s.data(), s.size() * 4, cudaMemcpyHostToDevice));
      a.softmax_offset = static_cast<float*>(offset.p);
      a.dsoftmax_offset = static_cast<float*>(doffset.p);
    }
    a.dropout = float(c.dropout), a.seed = 0x123456789abcull, a.rng_offset = 7;
    a.d_o = dout.p, a.do_st = P.Lo.st, a.dq = dq.p, a.dk = dk.p, a.dv_out = dv.p;
    a.dq_st = P.Lq.st, a.dk_st = P.Lk.st, a.dv_st = P.Lv.st;
    const size_t wsb = te_cuda_flash_bwd_workspace_bytes(&a);
    CK(cudaFree(ws.p));
    CK(cudaMalloc(&ws.p, wsb));
    a.workspace = ws.p;
  }
  void poison() {
    for (DevTensor* t : {&o, &lse, &dq, &dk, &dv}) CK(cudaMemset(t->p, 0xff, t->bytes));
    CK(cudaMemset(doffset.p, 0, doffset.bytes));
  }
};

static std::string describe(const Case& c) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s %s b%d h%d/%d d%d/%d s%d/%d %s%s%s w[%d,%d]%s%s%s%s p%.2f", c.name.c_str(),
           c.elem == te_cuda::kF16 ? "fp16" : "bf16", c.b, c.h, c.hkv, c.d, c.dv, c.sq, c.skv, c.format.c_str(),
           c.causal ? " causal" : "", c.bottom_right ? " br" : "", c.left, c.right, c.varlen ? " varlen" : "",
           c.alibi ? " alibi" : "", c.bias ? " bias" : "", c.softmax ? (c.softmax == 1 ? " off_by_one" : " learnable") : "",
           c.dropout);
  return buf;
}

static std::vector<Case> check_cases() {
  std::vector<Case> cs;
  for (int elem : {te_cuda::kBF16, te_cuda::kF16})
    for (int d : {64, 128})
      for (bool causal : {false, true}) {
        Case c{"basic", elem, 2, 4, 4, d, d, 256, 256};
        c.causal = causal;
        cs.push_back(c);
      }
  auto add = [&](Case c) { cs.push_back(c); };
  const int bf = te_cuda::kBF16, hf = te_cuda::kF16;
  { Case c{"odd_len", bf, 2, 4, 4, 128, 128, 200, 333}; c.causal = true; c.bottom_right = true; add(c); }
  { Case c{"odd_len_tl", hf, 2, 4, 4, 64, 64, 333, 200}; c.causal = true; add(c); }
  { Case c{"cross_no_mask", bf, 1, 2, 2, 128, 128, 77, 300}; add(c); }
  // b * h * sq odd: the dQ accumulator after Dvec in the workspace must still be 16-byte aligned.
  { Case c{"odd_rows", bf, 1, 1, 1, 128, 128, 77, 99}; c.causal = true; add(c); }
  { Case c{"odd_rows", hf, 1, 1, 1, 64, 64, 45, 45}; add(c); }
  { Case c{"gqa", bf, 2, 8, 2, 128, 128, 256, 256}; c.causal = true; add(c); }
  { Case c{"mqa", hf, 1, 8, 1, 64, 64, 192, 192}; add(c); }
  { Case c{"sbhd", bf, 2, 4, 4, 64, 64, 160, 160}; c.format = "sbhd"; c.causal = true; add(c); }
  { Case c{"thd", bf, 3, 4, 2, 128, 128, 300, 300}; c.format = "thd"; c.varlen = true; c.causal = true; c.bottom_right = true; add(c); }
  { Case c{"bshd_padding", hf, 3, 4, 4, 64, 64, 200, 250}; c.varlen = true; add(c); }
  { Case c{"window", bf, 2, 4, 4, 128, 128, 384, 384}; c.left = 70; c.right = 0; c.causal = true; add(c); }
  { Case c{"window_2sided", hf, 1, 4, 4, 64, 64, 300, 300}; c.left = 33; c.right = 17; add(c); }
  { Case c{"window_br", bf, 2, 2, 2, 64, 64, 100, 280}; c.left = 50; c.right = 10; c.bottom_right = true; add(c); }
  { Case c{"alibi", bf, 2, 4, 4, 128, 128, 256, 256}; c.alibi = true; c.causal = true; add(c); }
  { Case c{"bias", hf, 2, 4, 4, 64, 64, 128, 192}; c.bias = true; add(c); }
  { Case c{"off_by_one", bf, 2, 4, 4, 64, 64, 130, 130}; c.softmax = 1; c.causal = true; add(c); }
  { Case c{"learnable", hf, 2, 4, 4, 64, 64, 130, 130}; c.softmax = 2; add(c); }
  { Case c{"dropout", bf, 2, 4, 4, 64, 64, 128, 128}; c.dropout = 0.2; c.causal = true; add(c); }
  { Case c{"dropout_fp16", hf, 1, 2, 2, 128, 128, 96, 160}; c.dropout = 0.5; add(c); }
  { Case c{"empty_rows_br", bf, 1, 2, 2, 64, 64, 300, 100}; c.causal = true; c.bottom_right = true; add(c); }
  for (int d : {32, 96, 256}) { Case c{"headdim", bf, 1, 4, 4, d, d, 200, 200}; c.causal = true; add(c); }
  { Case c{"headdim", hf, 1, 4, 2, 192, 128, 200, 200}; add(c); }
  { Case c{"headdim", bf, 2, 4, 4, 128, 64, 160, 230}; c.causal = true; c.bottom_right = true; add(c); }
  { Case c{"headdim", hf, 1, 2, 2, 192, 192, 150, 150}; c.causal = true; add(c); }
  { Case c{"medium", bf, 1, 2, 2, 128, 128, 1024, 1024}; c.causal = true; add(c); }
  return cs;
}

static FILE* json_out = nullptr;

// The kernel families behind one shape: explain, workspace size, forward, backward; deterministic:
// the call sets AttentionArgs::deterministic, and the check also runs the backward a second time and
// requires dQ, dK and dV to be the same bits.
// fwd_kernel / bwd_kernel: TE_FLASH_FWD / TE_FLASH_BWD for the call (flash_launch.cuh), nullptr for
// what the environment of the run says (by default: the default kernel choice).
struct Family {
  const char* name;
  bool deterministic;
  const char* fwd_kernel;
  const char* bwd_kernel;
  bool (*explain)(const AttentionArgs*, char*, size_t);
  size_t (*workspace)(const AttentionArgs*);
  int (*fwd)(const AttentionArgs*, void*);
  int (*bwd)(const AttentionArgs*, void*);
};
static const Family kFamilies[] = {
    {"cuda.flash", false, nullptr, nullptr,
     [](const AttentionArgs* a, char* r, size_t n) { return te_cuda_flash_explain(a, 1, r, n) != 0; },
     te_cuda_flash_bwd_workspace_bytes, te_cuda_flash_forward, te_cuda_flash_backward},
    {"cuda.flash[deterministic]", true, nullptr, nullptr,
     [](const AttentionArgs* a, char* r, size_t n) { return te_cuda_flash_explain(a, 1, r, n) != 0; },
     te_cuda_flash_bwd_workspace_bytes, te_cuda_flash_forward, te_cuda_flash_backward},
    {"cuda.flash[fwd wgmma_k2]", false, "wgmma_k2", nullptr,
     [](const AttentionArgs* a, char* r, size_t n) { return te_cuda_flash_explain(a, 1, r, n) != 0; },
     te_cuda_flash_bwd_workspace_bytes, te_cuda_flash_forward, te_cuda_flash_backward},
    {"cuda.flash[lpt grids]", false, "wgmma_lpt", "wgmma_lpt",
     [](const AttentionArgs* a, char* r, size_t n) { return te_cuda_flash_explain(a, 1, r, n) != 0; },
     te_cuda_flash_bwd_workspace_bytes, te_cuda_flash_forward, te_cuda_flash_backward},
    {"cuda.flash[block-fastest grids]", false, "wgmma_nolpt", "wgmma_nolpt",
     [](const AttentionArgs* a, char* r, size_t n) { return te_cuda_flash_explain(a, 1, r, n) != 0; },
     te_cuda_flash_bwd_workspace_bytes, te_cuda_flash_forward, te_cuda_flash_backward},
    {"cuda.flash[classic wgmma]", false, "wgmma_classic", "wgmma_classic",
     [](const AttentionArgs* a, char* r, size_t n) { return te_cuda_flash_explain(a, 1, r, n) != 0; },
     te_cuda_flash_bwd_workspace_bytes, te_cuda_flash_forward, te_cuda_flash_backward},
    {"cuda.flash[bwd mma 64x128]", false, nullptr, "mma64x128",
     [](const AttentionArgs* a, char* r, size_t n) { return te_cuda_flash_explain(a, 1, r, n) != 0; },
     te_cuda_flash_bwd_workspace_bytes, te_cuda_flash_forward, te_cuda_flash_backward},
    {"cuda.flash[bwd mma 64x64]", false, nullptr, "mma64x64",
     [](const AttentionArgs* a, char* r, size_t n) { return te_cuda_flash_explain(a, 1, r, n) != 0; },
     te_cuda_flash_bwd_workspace_bytes, te_cuda_flash_forward, te_cuda_flash_backward},
    {"cuda.unfused", false, nullptr, nullptr, [](const AttentionArgs* a, char* r, size_t n) { return te_cuda_unfused_explain(a, r, n) != 0; },
     te_cuda_unfused_workspace_bytes, te_cuda_unfused_forward, te_cuda_unfused_backward},
};

// Sets a kernel-choice variable of flash_launch.cuh (TE_FLASH_FWD, TE_FLASH_BWD) for the next calls;
// nullptr restores what the environment of the run said (the default families then follow it).
static void set_kernel_env(const char* var, const char* value) {
  static const char* const fwd0 = getenv("TE_FLASH_FWD") ? strdup(getenv("TE_FLASH_FWD")) : nullptr;
  static const char* const bwd0 = getenv("TE_FLASH_BWD") ? strdup(getenv("TE_FLASH_BWD")) : nullptr;
  const char* start = strcmp(var, "TE_FLASH_FWD") == 0 ? fwd0 : bwd0;
  if (value || start) setenv(var, value ? value : start, 1);
  else unsetenv(var);
}
static bool skip_unfused = false;  // --no-unfused: cuda.flash families only

static bool run_check(const Case& c, std::mt19937_64& rng) {
  Problem P = make_problem(c, rng);
  DeviceProblem D(P);
  RefProblem R{c.b, c.h, c.hkv, c.d, c.dv, P.lq, P.lk, c.sq, c.skv, 1.0 / std::sqrt(double(c.d)), c.causal, c.bottom_right};
  R.scale = double(D.a.scale);
  R.left = c.left, R.right = c.right, R.alibi = P.alibi, R.softmax = c.softmax, R.bias = P.bias;
  for (double x : P.offset) R.offset.push_back(double(float(x)));
  for (double& x : R.alibi) x = double(float(x));
  R.dropout = double(D.a.dropout), R.seed = D.a.seed, R.rng_offset = D.a.rng_offset;
  std::vector<double> o, lse, dq, dk, dv;
  ref_attention(R, P.q, P.k, P.v, P.dout, o, lse, dq, dk, dv);
  bool all_ok = true;
  for (const Family& fam : kFamilies) {
    if ((c.sq > 512 || skip_unfused) && std::string(fam.name) == "cuda.unfused") continue;  // slow: short cases
    char reason[256];
    D.a.deterministic = fam.deterministic;
    set_kernel_env("TE_FLASH_FWD", fam.fwd_kernel);
    set_kernel_env("TE_FLASH_BWD", fam.bwd_kernel);
    if (!fam.explain(&D.a, reason, sizeof reason)) {
      printf("SKIP %s %s: %s\n", fam.name, describe(c).c_str(), reason);
      continue;
    }
    void* ws = nullptr;
    CK(cudaMalloc(&ws, fam.workspace(&D.a)));
    D.a.workspace = ws;
    D.poison();
    CK(cudaError_t(fam.fwd(&D.a, nullptr)));
    CK(cudaError_t(fam.bwd(&D.a, nullptr)));
    CK(cudaDeviceSynchronize());
    // Deterministic: a second backward (outputs poisoned again) must give the same bits.
    bool same_bits = true;
    if (fam.deterministic) {
      std::vector<std::vector<unsigned char>> first;
      for (DevTensor* t : {&D.dq, &D.dk, &D.dv}) {
        first.emplace_back(t->bytes);
        CK(cudaMemcpy(first.back().data(), t->p, t->bytes, cudaMemcpyDeviceToHost));
        CK(cudaMemset(t->p, 0xff, t->bytes));
      }
      CK(cudaError_t(fam.bwd(&D.a, nullptr)));
      CK(cudaDeviceSynchronize());
      int idx = 0;
      for (DevTensor* t : {&D.dq, &D.dk, &D.dv}) {
        std::vector<unsigned char> again(t->bytes);
        CK(cudaMemcpy(again.data(), t->p, t->bytes, cudaMemcpyDeviceToHost));
        same_bits = same_bits && again == first[idx++];
      }
    }
    D.a.deterministic = 0;
    CK(cudaFree(ws));
    const Err eo = compare(D.o, c.elem, P.Lo, o, c.b, c.sq, c.h, c.dv, P.lq);
    const Err edq = compare(D.dq, c.elem, P.Lq, dq, c.b, c.sq, c.h, c.d, P.lq);
    const Err edk = compare(D.dk, c.elem, P.Lk, dk, c.b, c.skv, c.hkv, c.d, P.lk);
    const Err edv = compare(D.dv, c.elem, P.Lv, dv, c.b, c.skv, c.hkv, c.dv, P.lk);
    std::vector<float> glse(lse.size());
    CK(cudaMemcpy(glse.data(), D.lse.p, glse.size() * 4, cudaMemcpyDeviceToHost));
    double lse_err = 0;
    for (size_t i = 0; i < lse.size(); ++i) {
      if (std::isinf(lse[i]) || std::isinf(glse[i])) {
        if (!(std::isinf(lse[i]) && std::isinf(glse[i]) && glse[i] < 0)) lse_err = INFINITY;
      } else lse_err = std::max(lse_err, std::fabs(glse[i] - lse[i]));
      if (std::isnan(glse[i])) lse_err = INFINITY;
    }
    // The learnable softmax offset's gradient: -sum over rows of exp(offset - lse) * rowsum(dO * O).
    double eoff = 0;
    if (c.softmax == 2) {
      std::vector<float> got(c.h);
      CK(cudaMemcpy(got.data(), D.doffset.p, c.h * 4, cudaMemcpyDeviceToHost));
      for (int hh = 0; hh < c.h; ++hh) {
        double want = 0;
        for (int e = 0; e < c.b; ++e)
          for (int i = 0; i < P.lq[e]; ++i) {
            const double l = lse[(size_t(e) * c.h + hh) * c.sq + i];
            if (std::isinf(l)) continue;
            double dvec = 0;
            for (int x = 0; x < c.dv; ++x)
              dvec += o[((size_t(e) * c.sq + i) * c.h + hh) * c.dv + x] * P.dout[((size_t(e) * c.sq + i) * c.h + hh) * c.dv + x];
            want -= std::exp(R.offset[hh] - l) * dvec;
          }
        eoff = std::max(eoff, std::fabs(got[hh] - want) / std::max(1.0, std::fabs(want)));
      }
    }
    const double tol_f = c.elem == te_cuda::kF16 ? 4e-3 : 2.5e-2, tol_b = c.elem == te_cuda::kF16 ? 1e-2 : 5e-2;
    const bool ok = eo.rel() < tol_f && lse_err < 1e-3 && edq.rel() < tol_b && edk.rel() < tol_b && edv.rel() < tol_b &&
                    eoff < tol_b && same_bits;
    all_ok = all_ok && ok;
    printf("%s %s %s: o %.2e lse %.2e dq %.2e dk %.2e dv %.2e%s%s\n", ok ? "PASS" : "FAIL", fam.name, describe(c).c_str(),
           eo.rel(), lse_err, edq.rel(), edk.rel(), edv.rel(), c.softmax == 2 ? (" doffset " + std::to_string(eoff)).c_str() : "",
           fam.deterministic ? (same_bits ? " rerun: same bits" : " rerun: BITS DIFFER") : "");
    if (json_out)
      fprintf(json_out,
              "{\"family\":\"%s\",\"case\":\"%s\",\"ok\":%s,\"o\":%.3e,\"lse\":%.3e,\"dq\":%.3e,\"dk\":%.3e,\"dv\":%.3e,"
              "\"same_bits\":%s}\n",
              fam.name, describe(c).c_str(), ok ? "true" : "false", eo.rel(), lse_err, edq.rel(), edk.rel(), edv.rel(),
              same_bits ? "true" : "false");
    if (json_out) fflush(json_out);
    fflush(stdout);
  }
  return all_ok;
}

static float median_ms(const std::vector<float>& t) {
  std::vector<float> s = t;
  std::sort(s.begin(), s.end());
  return s[s.size() / 2];
}

// A kernel choice the bench times: TE_FLASH_FWD / TE_FLASH_BWD values (nullptr: the run's default).
struct BenchVariant {
  const char* name;
  const char* fwd;
  const char* bwd;
  bool deterministic;
};
static const BenchVariant kBenchVariants[] = {
    {"default", nullptr, nullptr, false},
    {"deterministic", nullptr, nullptr, true},
    {"fwd_wgmma_k2", "wgmma_k2", nullptr, false},
    {"fwd_lpt", "wgmma_lpt", nullptr, false},
    {"bwd_lpt", nullptr, "wgmma_lpt", false},
    {"lpt", "wgmma_lpt", "wgmma_lpt", false},
    {"nolpt", "wgmma_nolpt", "wgmma_nolpt", false},
    {"fwd_classic", "wgmma_classic", nullptr, false},
    {"bwd_classic", nullptr, "wgmma_classic", false},
    {"classic", "wgmma_classic", "wgmma_classic", false},
    {"bwd_mma64x128", nullptr, "mma64x128", false},
    {"mma64x128", "mma", "mma64x128", false},
    {"mma64x64", "mma", "mma64x64", false},
};
static std::vector<BenchVariant> bench_variants(std::begin(kBenchVariants), std::end(kBenchVariants));

static void run_bench(const Case& c, std::mt19937_64& rng, bool with_bias) {
  Case cc = c;
  cc.bias = with_bias;
  // Inputs: random on the device side is not needed for timing; upload host randoms once.
  Problem P = make_problem(cc, rng, true);
  DeviceProblem D(P);
  char reason[256];
  if (!te_cuda_flash_explain(&D.a, 1, reason, sizeof reason)) {
    printf("SKIP %s: %s\n", describe(cc).c_str(), reason);
    return;
  }
  cudaEvent_t s0, s1;
  CK(cudaEventCreate(&s0));
  CK(cudaEventCreate(&s1));
  // Long configs: fewer repetitions (each fwd+bwd is ~10 ms; the GPU job's budget is a minute).
  const int iters = c.sq >= 4096 ? 20 : 100, warm = c.sq >= 4096 ? 5 : 10;
  auto time = [&](bool bwd) {
    std::vector<float> ts;
    for (int it = 0; it < iters + warm; ++it) {
      CK(cudaEventRecord(s0));
      CK(cudaError_t(te_cuda_flash_forward(&D.a, nullptr)));
      if (bwd) CK(cudaError_t(te_cuda_flash_backward(&D.a, nullptr)));
      CK(cudaEventRecord(s1));
      CK(cudaEventSynchronize(s1));
      float ms;
      CK(cudaEventElapsedTime(&ms, s0, s1));
      if (it >= warm) ts.push_back(ms);
    }
    return median_ms(ts);
  };
  double flops = 4.0 * c.b * c.h * double(c.sq) * c.skv * c.d;
  if (c.causal) flops /= 2;
  // Timed kernel choices (bench_variants, --variants): forward alone and forward + backward each.
  std::string json = "{\"name\":\"" + c.name + "\"";
  char buf[512];
  for (const BenchVariant& v : bench_variants) {
    set_kernel_env("TE_FLASH_FWD", v.fwd);
    set_kernel_env("TE_FLASH_BWD", v.bwd);
    D.a.deterministic = v.deterministic;
    const float f = time(false), fb = time(true);
    D.a.deterministic = 0;
    set_kernel_env("TE_FLASH_FWD", nullptr);
    set_kernel_env("TE_FLASH_BWD", nullptr);
    printf("BENCH %-15s %-14s fwd %.4f ms (%.1f TFLOP/s)  fwd+bwd %.4f ms (%.1f TFLOP/s)\n", c.name.c_str(), v.name, f,
           flops / f / 1e9, fb, 3.5 * flops / fb / 1e9);
    if (!strcmp(v.name, "default"))
      snprintf(buf, sizeof buf, ",\"fwd_ms\":%.4f,\"fwd_bwd_ms\":%.4f,\"fwd_tflops\":%.1f,\"fwd_bwd_tflops\":%.1f", f, fb,
               flops / f / 1e9, 3.5 * flops / fb / 1e9);
    else if (!strcmp(v.name, "deterministic"))
      snprintf(buf, sizeof buf, ",\"fwd_bwd_deterministic_ms\":%.4f", fb);
    else
      snprintf(buf, sizeof buf, ",\"%s_fwd_ms\":%.4f,\"%s_fwd_bwd_ms\":%.4f", v.name, f, v.name, fb);
    json += buf;
  }
  if (json_out) fprintf(json_out, "%s}\n", json.c_str()), fflush(json_out);
  fflush(stdout);
}

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "check";
  for (int i = 2; i + 1 < argc; ++i)
    if (!strcmp(argv[i], "--json")) json_out = fopen(argv[i + 1], "w");
  for (int i = 2; i < argc; ++i)
    if (!strcmp(argv[i], "--no-unfused")) skip_unfused = true;
  for (int i = 2; i + 1 < argc; ++i)
    if (!strcmp(argv[i], "--variants")) {
      bench_variants.clear();
      const std::string list = std::string(argv[i + 1]) + ",";
      for (size_t at = 0, comma; (comma = list.find(',', at)) != std::string::npos; at = comma + 1)
        for (const BenchVariant& v : kBenchVariants)
          if (list.compare(at, comma - at, v.name) == 0) bench_variants.push_back(v);
    }
  std::mt19937_64 rng(std::random_device{}());
  if (mode == "check") {
    int failed = 0, n = 0;
    for (const Case& c : check_cases()) failed += !run_check(c, rng), ++n;
    printf("%d passed, %d failed\n", n - failed, failed);
    return failed ? 1 : 0;
  }
  // The seed configs of ../shared/gpu/torch_sdpa_anchor.py (bf16, no dropout).
  const int bf = te_cuda::kBF16;
  std::vector<std::pair<Case, bool>> seeds = {
      {Case{"test_0", bf, 2, 16, 16, 64, 64, 512, 512}, false},
      {Case{"test_1", bf, 2, 16, 16, 128, 128, 2048, 2048}, false},
      {Case{"test_2", bf, 2, 16, 16, 128, 128, 2048, 2048}, true},
      {Case{"test_3", bf, 2, 32, 4, 128, 128, 8192, 8192}, false},
      {Case{"long_4k_full", bf, 8, 16, 16, 128, 128, 4096, 4096}, false},
      {Case{"long_4k_causal", bf, 8, 16, 16, 128, 128, 4096, 4096}, false},
  };
  for (auto& [c, bias] : seeds) c.causal = c.name != "test_0" && c.name != "long_4k_full";
  // An optional config name after the mode limits the run to that config (for profilers).
  const std::string only = argc > 2 && argv[2][0] != '-' ? argv[2] : "";
  for (auto& [c, bias] : seeds)
    if (only.empty() || c.name == only) run_bench(c, rng, bias);
  return 0;
}
