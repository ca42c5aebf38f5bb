// Standalone check and timing of the "cuda.cudnn" family through the te C API (no Node): for each
// config, fresh random inputs, poisoned outputs, forward and backward against the float64 reference
// of native/cuda/tests/attention_reference.h (NaN fails), then fwd and bwd medians with CUDA events.
// Build and run on the GPU machine: scripts/gpu/cudnn_standalone.sh. Exit status 1 on any failure.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../cuda/tests/attention_reference.h"
#include "te/te_attention.h"

extern "C" int te_cudnn_version(void);

namespace {

struct Config {
  const char* name;
  te_dtype dtype;
  int b, h, hg, d, sq, skv;
  bool causal, bottom_right, padded, deterministic;
  bool check, time;
  int left = -1;  // sliding window left bound (with causal)
};

#define CUDA_OK(x)                                                                              \
  do {                                                                                          \
    cudaError_t e_ = (x);                                                                       \
    if (e_ != cudaSuccess) {                                                                    \
      std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__);      \
      std::exit(1);                                                                             \
    }                                                                                           \
  } while (0)

uint16_t encode(te_dtype t, double x) {
  uint16_t u;
  if (t == TE_F16) {
    __half h = __float2half_rn(float(x));
    std::memcpy(&u, &h, 2);
  } else {
    __nv_bfloat16 h = __float2bfloat16_rn(float(x));
    std::memcpy(&u, &h, 2);
  }
  return u;
}
double decode(te_dtype t, uint16_t u) {
  if (t == TE_F16) {
    __half h;
    std::memcpy(&h, &u, 2);
    return __half2float(h);
  }
  __nv_bfloat16 h;
  std::memcpy(&h, &u, 2);
  return __bfloat162float(h);
}

struct DeviceBuffer {
  void* p = nullptr;
  size_t bytes = 0;
  explicit DeviceBuffer(size_t n) : bytes(n) { CUDA_OK(cudaMalloc(&p, n > 0 ? n : 16)); }
  ~DeviceBuffer() { cudaFree(p); }
};

// Random 16-bit tensor and its float64 copy (values as rounded, so the reference sees the same inputs).
std::vector<uint16_t> randomTensor(te_dtype t, size_t n, std::mt19937& rng, std::vector<double>& exact) {
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<uint16_t> out(n);
  exact.resize(n);
  for (size_t i = 0; i < n; ++i) out[i] = encode(t, dist(rng)), exact[i] = decode(t, out[i]);
  return out;
}

// ||a - ref|| / ||ref|| over the elements `use` selects; NaN gives infinity.
template <typename Use>
double relErr(const std::vector<double>& a, const std::vector<double>& ref, Use use) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!use(i)) continue;
    if (!std::isfinite(a[i]) && !(std::isinf(a[i]) && a[i] == ref[i])) return INFINITY;
    if (std::isinf(ref[i])) {
      if (a[i] != ref[i]) return INFINITY;
      continue;
    }
    num += (a[i] - ref[i]) * (a[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

float medianMs(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

bool run(const Config& c, std::mt19937& rng, FILE* csv) {
  const size_t nq = size_t(c.b) * c.sq * c.h * c.d, nk = size_t(c.b) * c.skv * c.hg * c.d;
  const size_t nlse = size_t(c.b) * c.h * c.sq;
  std::vector<int> lq(c.b, c.sq), lk(c.b, c.skv);
  if (c.padded) {
    std::uniform_int_distribution<int> uq(1, c.sq), uk(1, c.skv);
    for (int e = 0; e < c.b; ++e) lq[e] = uq(rng), lk[e] = uk(rng);
    lq[0] = c.sq;  // one full entry keeps the max lengths honest
  }
  std::vector<int32_t> cuq(c.b + 1, 0), cuk(c.b + 1, 0);
  for (int e = 0; e < c.b; ++e) cuq[e + 1] = cuq[e] + lq[e], cuk[e + 1] = cuk[e] + lk[e];

  std::vector<double> q, k, v, dout;
  auto hq = randomTensor(c.dtype, nq, rng, q), hk = randomTensor(c.dtype, nk, rng, k),
       hv = randomTensor(c.dtype, nk, rng, v), hdo = randomTensor(c.dtype, nq, rng, dout);
  DeviceBuffer dq_in(nq * 2), dk_in(nk * 2), dv_in(nk * 2), ddo(nq * 2), dout_o(nq * 2), dlse(nlse * 4),
      ddq(nq * 2), ddk(nk * 2), ddv(nk * 2), dcuq((c.b + 1) * 4), dcuk((c.b + 1) * 4);
  CUDA_OK(cudaMemcpy(dq_in.p, hq.data(), nq * 2, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dk_in.p, hk.data(), nk * 2, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dv_in.p, hv.data(), nk * 2, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(ddo.p, hdo.data(), nq * 2, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dcuq.p, cuq.data(), (c.b + 1) * 4, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dcuk.p, cuk.data(), (c.b + 1) * 4, cudaMemcpyHostToDevice));
  // Poison every output (0xFF bytes are NaN in fp16, bf16 and fp32).
  for (DeviceBuffer* b : {&dout_o, &dlse, &ddq, &ddk, &ddv}) CUDA_OK(cudaMemset(b->p, 0xFF, b->bytes));

  te_attn_desc d{};
  d.format = TE_BSHD, d.dtype = c.dtype, d.b = c.b, d.h = c.h, d.hg = c.hg, d.d = c.d, d.dv = c.d;
  d.sq = c.sq, d.skv = c.skv, d.causal = c.causal, d.bottom_right = c.bottom_right;
  d.window_left = -1, d.window_right = c.causal ? 0 : -1, d.scale = float(1.0 / std::sqrt(double(c.d)));
  d.deterministic = c.deterministic, d.window_left = c.left;
  auto view = [](const void* p, int64_t n, int s, int h, int dd) {
    return te_view{p, n, int64_t(s) * h * dd, int64_t(h) * dd, dd, 1};
  };
  auto out_view = [](void* p, int64_t n, int s, int h, int dd) {
    return te_out_view{p, n, int64_t(s) * h * dd, int64_t(h) * dd, dd, 1};
  };
  te_attn_bwd_args g{};
  te_attn_fwd_args& f = g.fwd;
  f.q = view(dq_in.p, nq, c.sq, c.h, c.d), f.k = view(dk_in.p, nk, c.skv, c.hg, c.d);
  f.v = view(dv_in.p, nk, c.skv, c.hg, c.d), f.o = out_view(dout_o.p, nq, c.sq, c.h, c.d);
  f.lse = static_cast<float*>(dlse.p), f.lse_numel = int64_t(nlse);
  if (c.padded) f.cu_seqlens_q = static_cast<int32_t*>(dcuq.p), f.cu_seqlens_kv = static_cast<int32_t*>(dcuk.p);
  g.d_o = view(ddo.p, nq, c.sq, c.h, c.d);
  g.dq = out_view(ddq.p, nq, c.sq, c.h, c.d), g.dk = out_view(ddk.p, nk, c.skv, c.hg, c.d);
  g.dv = out_view(ddv.p, nk, c.skv, c.hg, c.d);

  char reason[512] = {0};
  if (te_attn_explain("cuda.cudnn", &d, reason, sizeof reason) != TE_OK) {
    std::printf("%-22s REFUSED: %s\n", c.name, reason);
    return false;
  }
  if (te_attn_forward("cuda.cudnn", &d, &f) != TE_OK) {
    std::printf("%-22s forward FAILED: %s\n", c.name, te_last_error());
    return false;
  }
  if (te_attn_backward("cuda.cudnn", &d, &g) != TE_OK) {
    std::printf("%-22s backward FAILED: %s\n", c.name, te_last_error());
    return false;
  }
  CUDA_OK(cudaDeviceSynchronize());
  bool ok = true;
  char line[512];
  if (c.check) {
    RefProblem p;
    p.b = c.b, p.h = c.h, p.hkv = c.hg, p.d = c.d, p.dv = c.d, p.lq = lq, p.lk = lk, p.sq = c.sq, p.skv = c.skv;
    p.scale = d.scale, p.causal = c.causal, p.bottom_right = c.bottom_right, p.left = c.left;
    std::vector<double> ro, rlse, rdq, rdk, rdv;
    ref_attention(p, q, k, v, dout, ro, rlse, rdq, rdk, rdv);
    auto fetch16 = [&](const DeviceBuffer& b, size_t n) {
      std::vector<uint16_t> h(n);
      CUDA_OK(cudaMemcpy(h.data(), b.p, n * 2, cudaMemcpyDeviceToHost));
      std::vector<double> out(n);
      for (size_t i = 0; i < n; ++i) out[i] = decode(c.dtype, h[i]);
      return out;
    };
    std::vector<float> lse32(nlse);
    CUDA_OK(cudaMemcpy(lse32.data(), dlse.p, nlse * 4, cudaMemcpyDeviceToHost));
    std::vector<double> lse(lse32.begin(), lse32.end());
    auto all = [](size_t) { return true; };
    const double eo = relErr(fetch16(dout_o, nq), ro, all), el = relErr(lse, rlse, all);
    const double eq = relErr(fetch16(ddq, nq), rdq, all), ek = relErr(fetch16(ddk, nk), rdk, all),
                 ev = relErr(fetch16(ddv, nk), rdv, all);
    const double tol = c.dtype == TE_BF16 ? 2e-2 : 1e-2;
    ok = eo < tol && el < 1e-3 && eq < tol && ek < tol && ev < tol;
    std::snprintf(line, sizeof line, "%-22s %s rel err o %.2e lse %.2e dq %.2e dk %.2e dv %.2e (tol %.0e)", c.name,
                  ok ? "PASS" : "FAIL", eo, el, eq, ek, ev, tol);
    std::printf("%s\n", line);
  }
  if (c.time) {
    cudaEvent_t a, z;
    CUDA_OK(cudaEventCreate(&a));
    CUDA_OK(cudaEventCreate(&z));
    auto timeIt = [&](auto&& fn, int iters) {
      for (int i = 0; i < 5; ++i) fn();
      std::vector<float> ms;
      for (int i = 0; i < iters; ++i) {
        CUDA_OK(cudaEventRecord(a));
        fn();
        CUDA_OK(cudaEventRecord(z));
        CUDA_OK(cudaEventSynchronize(z));
        float t;
        CUDA_OK(cudaEventElapsedTime(&t, a, z));
        ms.push_back(t);
      }
      return medianMs(ms);
    };
    const int iters = c.sq >= 4096 ? 30 : 100;
    const float fwd = timeIt([&] { te_attn_forward("cuda.cudnn", &d, &f); }, iters);
    const float fb = timeIt(
        [&] {
          te_attn_forward("cuda.cudnn", &d, &f);
          te_attn_backward("cuda.cudnn", &d, &g);
        },
        iters);
    double flops = 4.0 * c.b * c.h * double(c.sq) * c.skv * c.d;
    if (c.causal) flops /= 2;
    std::printf("%-22s TIME fwd %.4f ms (%.1f TFLOPS) fwd+bwd %.4f ms (%.1f TFLOPS)\n", c.name, fwd,
                flops / fwd / 1e9, fb, 3.5 * flops / fb / 1e9);
    if (csv) std::fprintf(csv, "%s,%.4f,%.4f,%.1f,%.1f\n", c.name, fwd, fb, flops / fwd / 1e9, 3.5 * flops / fb / 1e9);
    cudaEventDestroy(a);
    cudaEventDestroy(z);
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::printf("cuDNN version loaded: %d; backends: %s\n", te_cudnn_version(), te_attn_backends());
  const bool only_check = argc > 1 && std::string(argv[1]) == "--check";
  FILE* csv = argc > 2 ? std::fopen(argv[2], "w") : nullptr;
  if (csv) std::fprintf(csv, "name,fwd_ms,fwd_bwd_ms,fwd_tflops,fwd_bwd_tflops\n");
  std::mt19937 rng(20261125);
  const Config checks[] = {
      {"basic_bf16_d64", TE_BF16, 2, 4, 4, 64, 128, 128, false, false, false, false, true, false},
      {"basic_fp16_d128", TE_F16, 2, 4, 4, 128, 128, 128, false, false, false, false, true, false},
      {"causal_bf16", TE_BF16, 2, 4, 4, 64, 128, 128, true, false, false, false, true, false},
      {"causal_br_bf16", TE_BF16, 2, 4, 4, 64, 96, 160, true, true, false, false, true, false},
      {"gqa_bf16", TE_BF16, 2, 8, 2, 64, 128, 128, true, false, false, false, true, false},
      {"padding_bf16", TE_BF16, 3, 4, 4, 64, 128, 192, false, false, true, false, true, false},
      {"padding_causal_fp16", TE_F16, 3, 4, 2, 128, 160, 160, true, false, true, false, true, false},
      {"odd_len_bf16", TE_BF16, 2, 4, 4, 64, 77, 131, false, false, false, false, true, false},
      {"deterministic_bf16", TE_BF16, 2, 4, 4, 128, 128, 128, true, false, false, true, true, false},
      {"window16_bf16", TE_BF16, 2, 4, 4, 64, 128, 128, true, false, false, false, true, false, 16},
      {"window8_br_fp16", TE_F16, 2, 4, 4, 64, 96, 160, true, true, false, false, true, false, 8},
      {"window24_pad_gqa_bf16", TE_BF16, 3, 8, 2, 64, 160, 160, true, false, true, false, true, false, 24},
      {"window12_pad_br_bf16", TE_BF16, 3, 4, 4, 64, 128, 160, true, true, true, false, true, false, 12},
  };
  const Config timings[] = {
      {"test_0", TE_BF16, 2, 16, 16, 64, 512, 512, false, false, false, false, false, true},
      {"test_1", TE_BF16, 2, 16, 16, 128, 2048, 2048, true, false, false, false, false, true},
      {"test_3", TE_BF16, 2, 32, 4, 128, 8192, 8192, true, false, false, false, false, true},
      {"long_4k_full", TE_BF16, 8, 16, 16, 128, 4096, 4096, false, false, false, false, false, true},
      {"long_4k_causal", TE_BF16, 8, 16, 16, 128, 4096, 4096, true, false, false, false, false, true},
  };
  int failures = 0;
  for (const Config& c : checks) failures += !run(c, rng, nullptr);
  if (!only_check)
    for (const Config& c : timings) failures += !run(c, rng, csv);
  if (csv) std::fclose(csv);
  std::printf("%d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
