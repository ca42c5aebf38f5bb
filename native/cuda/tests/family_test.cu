// Checks the "cuda.flash" and "cuda.unfused" families through the te C API against the "cpu" family of the same library:
// same descriptor, random inputs, forward and backward, relative max errors. Build (GPU machine):
// scripts/gpu/family_test.sh. Exit status 1 on a mismatch or an API error.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>
#include "te/te_attention.h"

struct Config {
  const char* name;
  const char* family;
  te_dtype dtype;
  int b, h, hg, d, s, causal, bottom_right;
  bool thd;
};

static float bf(uint16_t u) {
  uint32_t x = uint32_t(u) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}
static uint16_t to_bf(float f) {
  __nv_bfloat16 h = __float2bfloat16_rn(f);
  uint16_t u;
  std::memcpy(&u, &h, 2);
  return u;
}

// Tensors travel as 32-bit words: bf16 values in the low half of a word pair would complicate the
// views, so a tensor of n elements is a vector of n uint32 for fp32 and of n/2 (rounded up) for bf16.
static double value(te_dtype t, const std::vector<uint32_t>& v, size_t i) {
  if (t == TE_F32) {
    float f;
    std::memcpy(&f, &v[i], 4);
    return f;
  }
  uint16_t u;
  std::memcpy(&u, reinterpret_cast<const char*>(v.data()) + 2 * i, 2);
  return bf(u);
}

static double rel_err(te_dtype t, size_t n, const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  double e = 0, m = 1e-6;
  for (size_t i = 0; i < n; ++i) {
    const double x = value(t, a, i), y = value(t, b, i);
    if (std::isnan(x)) return INFINITY;
    e = std::max(e, std::fabs(x - y));
    m = std::max(m, std::fabs(y));
  }
  return e / m;
}

static bool run(const Config& c, std::mt19937& rng) {
  te_attn_desc d{};
  d.format = c.thd ? TE_THD : TE_BSHD;
  d.dtype = c.dtype;
  d.b = c.b, d.h = c.h, d.hg = c.hg, d.d = c.d, d.dv = c.d, d.sq = c.s, d.skv = c.s;
  d.causal = c.causal, d.bottom_right = c.bottom_right, d.window_left = d.window_right = -1;
  d.scale = 1.f / std::sqrt(float(c.d));
  std::vector<int> cu(c.b + 1, 0);
  std::uniform_int_distribution<int> len(1, c.s);
  for (int e = 0; e < c.b; ++e) cu[e + 1] = cu[e] + (c.thd && e > 0 ? len(rng) : c.s);
  const int64_t rows = c.thd ? cu[c.b] : int64_t(c.b) * c.s;
  d.tq = d.tkv = rows;
  const size_t nq = size_t(rows) * c.h * c.d, nk = size_t(rows) * c.hg * c.d, nl = size_t(c.b) * c.h * c.s;
  std::normal_distribution<float> N(0, 1);
  const size_t es = c.dtype == TE_F32 ? 4 : 2;
  auto words = [&](size_t n) { return std::vector<uint32_t>((n * es + 3) / 4, 0); };
  auto rnd = [&](size_t n) {
    std::vector<uint32_t> x = words(n);
    for (size_t i = 0; i < n; ++i) {
      const float f = N(rng);
      if (es == 4) std::memcpy(&x[i], &f, 4);
      else {
        const uint16_t u = to_bf(f);
        std::memcpy(reinterpret_cast<char*>(x.data()) + 2 * i, &u, 2);
      }
    }
    return x;
  };
  std::vector<uint32_t> q = rnd(nq), k = rnd(nk), v = rnd(nk), dO = rnd(nq);
  auto view = [&](const void* p, int64_t n, int heads) {
    return te_view{p, n, c.thd ? 0 : int64_t(c.s) * heads * c.d, int64_t(heads) * c.d, c.d, 1};
  };
  auto oview = [&](void* p, int64_t n, int heads) {
    return te_out_view{p, n, c.thd ? 0 : int64_t(c.s) * heads * c.d, int64_t(heads) * c.d, c.d, 1};
  };
  // Host run (cpu family) and device run (cuda.flash) of the same call.
  struct Bufs {
    void *q, *k, *v, *o, *dO, *dq, *dk, *dv;
    float* lse;
    int* cu;
  } H{}, D{};
  std::vector<uint32_t> ho = words(nq), hdq = words(nq), hdk = words(nk), hdv = words(nk);
  std::vector<float> hl(nl);
  H = {q.data(), k.data(), v.data(), ho.data(), dO.data(), hdq.data(), hdk.data(), hdv.data(), hl.data(), cu.data()};
  void* dev[9];
  const size_t bytes[9] = {nq * es, nk * es, nk * es, nq * es, nq * es, nq * es, nk * es, nk * es, nl * 4};
  for (int i = 0; i < 9; ++i) cudaMalloc(&dev[i], bytes[i]), cudaMemset(dev[i], 0, bytes[i]);
  int* dcu;
  cudaMalloc(&dcu, cu.size() * 4);
  cudaMemcpy(dcu, cu.data(), cu.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dev[0], q.data(), nq * es, cudaMemcpyHostToDevice);
  cudaMemcpy(dev[1], k.data(), nk * es, cudaMemcpyHostToDevice);
  cudaMemcpy(dev[2], v.data(), nk * es, cudaMemcpyHostToDevice);
  cudaMemcpy(dev[4], dO.data(), nq * es, cudaMemcpyHostToDevice);
  D = {dev[0], dev[1], dev[2], dev[3], dev[4], dev[5], dev[6], dev[7], static_cast<float*>(dev[8]), dcu};
  std::vector<uint32_t> go = words(nq), gdq = words(nq), gdk = words(nk), gdv = words(nk);
  bool ok = true;
  for (int pass = 0; pass < 2; ++pass) {
    const Bufs& B = pass ? D : H;
    const char* fam = pass ? c.family : "cpu";
    te_attn_fwd_args f{};
    f.q = view(B.q, nq, c.h), f.k = view(B.k, nk, c.hg), f.v = view(B.v, nk, c.hg), f.o = oview(B.o, nq, c.h);
    f.lse = B.lse, f.lse_numel = nl;
    if (c.thd) f.cu_seqlens_q = f.cu_seqlens_kv = B.cu;
    te_attn_bwd_args g{};
    g.fwd = f;
    g.d_o = view(B.dO, nq, c.h);
    g.dq = oview(B.dq, nq, c.h), g.dk = oview(B.dk, nk, c.hg), g.dv = oview(B.dv, nk, c.hg);
    char reason[256];
    te_status s = te_attn_explain(fam, &d, reason, sizeof reason);
    if (s == TE_OK) s = te_attn_forward(fam, &d, &f);
    if (s == TE_OK) s = te_attn_backward(fam, &d, &g);
    if (s != TE_OK) {
      printf("FAIL %s on %s: %s %s %s\n", c.name, fam, te_status_name(s), reason, te_last_error());
      ok = false;
    }
  }
  cudaDeviceSynchronize();
  cudaMemcpy(go.data(), dev[3], nq * es, cudaMemcpyDeviceToHost);
  cudaMemcpy(gdq.data(), dev[5], nq * es, cudaMemcpyDeviceToHost);
  cudaMemcpy(gdk.data(), dev[6], nk * es, cudaMemcpyDeviceToHost);
  cudaMemcpy(gdv.data(), dev[7], nk * es, cudaMemcpyDeviceToHost);
  const te_dtype t = c.dtype;
  const double eo = rel_err(t, nq, go, ho), eq = rel_err(t, nq, gdq, hdq), ek = rel_err(t, nk, gdk, hdk),
               ev = rel_err(t, nk, gdv, hdv);
  const double tf = t == TE_F32 ? 1e-4 : 2.5e-2, tb = t == TE_F32 ? 1e-4 : 5e-2;
  ok = ok && eo < tf && eq < tb && ek < tb && ev < tb;
  printf("%s %s %s (vs the cpu family): o %.2e dq %.2e dk %.2e dv %.2e\n", ok ? "PASS" : "FAIL", c.family, c.name,
         eo, eq, ek, ev);
  for (void* p : dev) cudaFree(p);
  cudaFree(dcu);
  return ok;
}

int main() {
  printf("backends: %s\n", te_attn_backends());
  std::mt19937 rng(std::random_device{}());
  const Config cs[] = {{"bshd_causal", "cuda.flash", TE_BF16, 2, 4, 4, 128, 256, 1, 0, false},
                       {"bshd_gqa", "cuda.flash", TE_BF16, 1, 8, 2, 64, 200, 0, 0, false},
                       {"thd_causal_br", "cuda.flash", TE_BF16, 3, 4, 2, 128, 150, 1, 1, true},
                       {"bshd_causal", "cuda.unfused", TE_BF16, 2, 4, 4, 128, 256, 1, 0, false},
                       {"bshd_gqa_fp32", "cuda.unfused", TE_F32, 1, 8, 2, 64, 200, 0, 0, false},
                       {"thd_causal_br_fp32", "cuda.unfused", TE_F32, 3, 4, 2, 80, 150, 1, 1, true}};
  int failed = 0;
  for (const Config& c : cs) failed += !run(c, rng);
  // A variant that is not compiled must be an explain reason, not a crash.
  te_attn_desc d{};
  d.dtype = TE_BF16, d.b = 1, d.h = 1, d.hg = 1, d.d = 80, d.dv = 80, d.sq = d.skv = 16;
  char reason[256] = "";
  const te_status s = te_attn_explain("cuda.flash", &d, reason, sizeof reason);
  printf("%s d=80 refused: %s\n", s == TE_ERR_UNSUPPORTED ? "PASS" : "FAIL", reason);
  failed += s != TE_ERR_UNSUPPORTED;
  printf("%d failed\n", failed);
  return failed ? 1 : 0;
}
