// Standalone check and timing of the "cuda.cudnn" family through the te C API (no Node): for each
// config, fresh random inputs, poisoned outputs, forward and backward against the float64 reference
// of native/cuda/tests/attention_reference.h (NaN fails), then fwd and bwd medians with CUDA events.
// Build and run on the GPU machine: scripts/gpu/cudnn_standalone.sh. Exit status 1 on any failure.
// Usage: cudnn_test [--check | --time] [timing.csv]; $CUDNN_TEST_ONLY (comma-separated substrings)
// selects configs by name. Probes ask what cuDNN computes; their failures are reported, not counted.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
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
  const char* bias = nullptr;  // post_scale_bias shape: "1hss", "b1ss", "bhss" or "11ss"
  bool dbias = false;
  int alibi = 0;      // ALiBi slopes: 0 none, 1 per head [h], 2 per entry [b, h]
  int bias_pad = 0;   // extra elements per bias row (a strided bias)
  bool probe = false; // asks what cuDNN supports: a failure is reported, not counted
  double dropout = 0; // checked by dropoutChecks (cuDNN's mask is not the reference's)
  int softmax = 0;    // 0 vanilla, 1 off_by_one, 2 learnable (random offsets)
  int right = -1;     // sliding window right bound (without causal)
  bool thd = false;   // packed tensors (with padded: per-entry lengths), kThdGap spare rows after each entry
};

constexpr int kThdGap = 3;

// Where the rows of a [b, s, heads, d] tensor live: dense bshd, or thd, where entry e's len[e] rows
// start at token tok[e] (cu_seqlens_*_padded) and the kThdGap rows after them belong to no entry.
struct Packing {
  bool thd;
  int b, s, heads, d;
  std::vector<int> len;
  std::vector<int32_t> tok;
  Packing(bool packed, int b_, int s_, int heads_, int d_, const std::vector<int>& lengths)
      : thd(packed), b(b_), s(s_), heads(heads_), d(d_), len(lengths), tok(b_ + 1, 0) {
    for (int e = 0; e < b; ++e) tok[e + 1] = tok[e] + len[e] + kThdGap;
  }
  size_t rows() const { return thd ? size_t(tok[b]) : size_t(b) * s; }
  size_t elements() const { return rows() * heads * d; }
  size_t row(int e, int i) const { return thd ? size_t(tok[e]) + i : size_t(e) * s + i; }
  // Dense [b][s][heads][d] values -> storage (gap rows get `fill`), and back (rows past a length: 0).
  template <typename T>
  std::vector<T> pack(const std::vector<T>& dense, T fill) const {
    if (!thd) return dense;
    std::vector<T> out(elements(), fill);
    for (int e = 0; e < b; ++e)
      for (int i = 0; i < len[e]; ++i)
        std::copy_n(&dense[(size_t(e) * s + i) * heads * d], size_t(heads) * d, &out[row(e, i) * heads * d]);
    return out;
  }
  std::vector<double> unpack(const std::vector<double>& stored) const {
    if (!thd) return stored;
    std::vector<double> out(size_t(b) * s * heads * d, 0.0);
    for (int e = 0; e < b; ++e)
      for (int i = 0; i < len[e]; ++i)
        std::copy_n(&stored[row(e, i) * heads * d], size_t(heads) * d, &out[(size_t(e) * s + i) * heads * d]);
    return out;
  }
  te_view view(const void* p) const {
    return te_view{p, int64_t(elements()), thd ? 0 : int64_t(s) * heads * d, int64_t(heads) * d, d, 1};
  }
  te_out_view out(void* p) const {
    return te_out_view{p, int64_t(elements()), thd ? 0 : int64_t(s) * heads * d, int64_t(heads) * d, d, 1};
  }
};

// The float64 reference, one batch entry at a time (the bias and the ALiBi slopes may differ per
// entry), with dBias: the sum of dS = P * (dP - rowsum(dO * O)) over the bias's broadcast dims.
struct Reference {
  std::vector<double> o, lse, dq, dk, dv, dbias;
};

Reference referenceOf(const RefProblem& all, const std::vector<double>& q, const std::vector<double>& k,
                      const std::vector<double>& v, const std::vector<double>& dout, const std::vector<double>& bias,
                      int bias_b, int bias_h, const std::vector<double>& slopes, int slopes_b) {
  const size_t nq = size_t(all.sq) * all.h * all.d, nk = size_t(all.skv) * all.hkv * all.d;
  const size_t nbias = size_t(all.sq) * all.skv;
  Reference r;
  r.dbias.assign(size_t(bias_b) * bias_h * nbias, 0.0);
  for (int e = 0; e < all.b; ++e) {
    RefProblem p = all;
    p.b = 1, p.lq = {all.lq[e]}, p.lk = {all.lk[e]};
    if (!bias.empty()) {
      p.bias.resize(size_t(all.h) * nbias);
      for (int hh = 0; hh < all.h; ++hh)
        for (size_t x = 0; x < nbias; ++x)
          p.bias[hh * nbias + x] = bias[(size_t(bias_b == 1 ? 0 : e) * bias_h + (bias_h == 1 ? 0 : hh)) * nbias + x];
    }
    if (!slopes.empty())
      p.alibi.assign(slopes.begin() + (slopes_b == 1 ? 0 : e) * all.h,
                     slopes.begin() + (slopes_b == 1 ? 0 : e) * all.h + all.h);
    auto slice = [e](const std::vector<double>& t, size_t n) {
      return std::vector<double>(t.begin() + e * n, t.begin() + (e + 1) * n);
    };
    std::vector<double> qe = slice(q, nq), ke = slice(k, nk), ve = slice(v, nk), doe = slice(dout, nq);
    std::vector<double> o, lse, dq, dk, dv;
    ref_attention(p, qe, ke, ve, doe, o, lse, dq, dk, dv);
    r.o.insert(r.o.end(), o.begin(), o.end()), r.lse.insert(r.lse.end(), lse.begin(), lse.end());
    r.dq.insert(r.dq.end(), dq.begin(), dq.end()), r.dk.insert(r.dk.end(), dk.begin(), dk.end());
    r.dv.insert(r.dv.end(), dv.begin(), dv.end());
    if (bias.empty()) continue;
    const int g = all.h / all.hkv;
    for (int hh = 0; hh < all.h; ++hh)
      for (int i = 0; i < p.lq[0]; ++i) {
        const double row_lse = lse[size_t(hh) * all.sq + i];
        if (row_lse == -INFINITY) continue;
        const double* qi = &qe[(size_t(i) * all.h + hh) * all.d];
        const double* oi = &o[(size_t(i) * all.h + hh) * all.d];
        const double* doi = &doe[(size_t(i) * all.h + hh) * all.d];
        double delta = 0;
        for (int c = 0; c < all.d; ++c) delta += doi[c] * oi[c];
        for (int j = 0; j < p.lk[0]; ++j) {
          const double* kj = &ke[(size_t(j) * all.hkv + hh / g) * all.d];
          const double* vj = &ve[(size_t(j) * all.hkv + hh / g) * all.d];
          double dot = 0, dp = 0;
          for (int c = 0; c < all.d; ++c) dot += qi[c] * kj[c], dp += doi[c] * vj[c];
          const double logit = ref_logit(p, 0, hh, i, j, dot);
          if (logit == -INFINITY) continue;
          const double prob = std::exp(logit - row_lse);
          r.dbias[(size_t(bias_b == 1 ? 0 : e) * bias_h + (bias_h == 1 ? 0 : hh)) * nbias + size_t(i) * all.skv + j] +=
              prob * (dp - delta);
        }
      }
  }
  return r;
}

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

// One cuda.cudnn call on bshd tensors of a config: device inputs, outputs and argument blocks.
struct DropoutCall {
  const Config& c;
  size_t nq, nk;
  DeviceBuffer q, k, v, d_o, o, lse, dq, dk, dv;
  te_attn_desc d{};
  te_attn_bwd_args g{};
  explicit DropoutCall(const Config& cfg)
      : c(cfg), nq(size_t(cfg.b) * cfg.sq * cfg.h * cfg.d), nk(size_t(cfg.b) * cfg.skv * cfg.hg * cfg.d), q(nq * 2),
        k(nk * 2), v(nk * 2), d_o(nq * 2), o(nq * 2), lse(size_t(cfg.b) * cfg.h * cfg.sq * 4), dq(nq * 2),
        dk(nk * 2), dv(nk * 2) {
    d.format = TE_BSHD, d.dtype = c.dtype, d.b = c.b, d.h = c.h, d.hg = c.hg, d.d = c.d, d.dv = c.d;
    d.sq = c.sq, d.skv = c.skv, d.causal = c.causal, d.window_left = -1, d.window_right = c.causal ? 0 : -1;
    d.scale = float(1.0 / std::sqrt(double(c.d))), d.dropout = float(c.dropout), d.dropout_seed = 1234567;
    auto view = [](const void* p, int64_t n, int s, int h, int dd) {
      return te_view{p, n, int64_t(s) * h * dd, int64_t(h) * dd, dd, 1};
    };
    auto out = [](void* p, int64_t n, int s, int h, int dd) {
      return te_out_view{p, n, int64_t(s) * h * dd, int64_t(h) * dd, dd, 1};
    };
    te_attn_fwd_args& f = g.fwd;
    f.q = view(q.p, nq, c.sq, c.h, c.d), f.k = view(k.p, nk, c.skv, c.hg, c.d), f.v = view(v.p, nk, c.skv, c.hg, c.d);
    f.o = out(o.p, nq, c.sq, c.h, c.d), f.lse = static_cast<float*>(lse.p), f.lse_numel = int64_t(c.b) * c.h * c.sq;
    g.d_o = view(d_o.p, nq, c.sq, c.h, c.d);
    g.dq = out(dq.p, nq, c.sq, c.h, c.d), g.dk = out(dk.p, nk, c.skv, c.hg, c.d);
    g.dv = out(dv.p, nk, c.skv, c.hg, c.d);
  }
  void upload(DeviceBuffer& b, const std::vector<uint16_t>& h) {
    CUDA_OK(cudaMemcpy(b.p, h.data(), h.size() * 2, cudaMemcpyHostToDevice));
  }
  std::vector<double> fetch(const DeviceBuffer& b, size_t n) const {
    std::vector<uint16_t> h(n);
    CUDA_OK(cudaMemcpy(h.data(), b.p, n * 2, cudaMemcpyDeviceToHost));
    std::vector<double> out(n);
    for (size_t i = 0; i < n; ++i) out[i] = decode(c.dtype, h[i]);
    return out;
  }
  bool forward() {
    if (te_attn_forward("cuda.cudnn", &d, &g.fwd) != TE_OK) {
      std::printf("%-22s forward FAILED: %s\n", c.name, te_last_error());
      return false;
    }
    CUDA_OK(cudaDeviceSynchronize());
    return true;
  }
  bool backward() {
    if (te_attn_backward("cuda.cudnn", &d, &g) != TE_OK) {
      std::printf("%-22s backward FAILED: %s\n", c.name, te_last_error());
      return false;
    }
    CUDA_OK(cudaDeviceSynchronize());
    return true;
  }
};

// Dropout with cuDNN's own Philox mask, which no reference reproduces: (1) the same seed gives the same
// output bits and another seed another output; (2) with q = k = 0 and V = I (skv = d) the output is the
// mask itself, whose keep rate must be 1 - p within 5 sigma; (3) along each gradient's own direction,
// the backward agrees with a central difference of the forward (same seed, so the same mask), which
// fails if the backward's mask or scaling differs from the forward's.
bool dropoutChecks(const Config& c, std::mt19937& rng) {
  DropoutCall call(c);
  std::vector<double> q, k, v, dout;
  const auto hq = randomTensor(c.dtype, call.nq, rng, q), hk = randomTensor(c.dtype, call.nk, rng, k),
             hv = randomTensor(c.dtype, call.nk, rng, v), hdo = randomTensor(c.dtype, call.nq, rng, dout);
  call.upload(call.q, hq), call.upload(call.k, hk), call.upload(call.v, hv), call.upload(call.d_o, hdo);
  char reason[512] = {0};
  if (te_attn_explain("cuda.cudnn", &call.d, reason, sizeof reason) != TE_OK) {
    std::printf("%-22s REFUSED: %s\n", c.name, reason);
    return false;
  }
  // (1) determinism per seed.
  if (!call.forward()) return false;
  const std::vector<double> o1 = call.fetch(call.o, call.nq);
  CUDA_OK(cudaMemset(call.o.p, 0xFF, call.nq * 2));
  if (!call.forward()) return false;
  const bool same = call.fetch(call.o, call.nq) == o1;
  call.d.dropout_seed += 1;
  if (!call.forward()) return false;
  const bool differs = call.fetch(call.o, call.nq) != o1;
  call.d.dropout_seed -= 1;
  // (3) gradients against central differences of L = <dO, O>, one tensor at a time.
  if (!call.forward() || !call.backward()) return false;
  double worst = 0;
  const char* names[3] = {"dq", "dk", "dv"};
  DeviceBuffer* inputs[3] = {&call.q, &call.k, &call.v};
  DeviceBuffer* grads[3] = {&call.dq, &call.dk, &call.dv};
  const std::vector<double>* values[3] = {&q, &k, &v};
  const size_t sizes[3] = {call.nq, call.nk, call.nk};
  char detail[256] = {0};
  for (int t = 0; t < 3; ++t) {
    const std::vector<double> grad = call.fetch(*grads[t], sizes[t]);
    double rms = 0;
    for (double x : grad) rms += x * x;
    rms = std::sqrt(rms / double(grad.size()));
    std::vector<uint16_t> plus(sizes[t]), minus(sizes[t]);
    double predicted = 0;
    const double eps = 0.03;
    for (size_t i = 0; i < sizes[t]; ++i) {
      const double x = (*values[t])[i], step = eps * grad[i] / std::max(rms, 1e-30);
      plus[i] = encode(c.dtype, x + step), minus[i] = encode(c.dtype, x - step);
      predicted += grad[i] * (decode(c.dtype, plus[i]) - decode(c.dtype, minus[i]));
    }
    auto loss = [&](const std::vector<uint16_t>& x) {
      call.upload(*inputs[t], x);
      if (!call.forward()) return NAN * 1.0;
      const std::vector<double> o = call.fetch(call.o, call.nq);
      double l = 0;
      for (size_t i = 0; i < call.nq; ++i) l += dout[i] * o[i];
      return l;
    };
    const double fd = loss(plus) - loss(minus);
    std::vector<uint16_t> original(sizes[t]);
    for (size_t i = 0; i < sizes[t]; ++i) original[i] = encode(c.dtype, (*values[t])[i]);
    call.upload(*inputs[t], original);
    const double rel = std::fabs(fd - predicted) / std::max(std::fabs(predicted), 1e-30);
    worst = std::isfinite(rel) ? std::max(worst, rel) : INFINITY;
    std::snprintf(detail + std::strlen(detail), sizeof detail - std::strlen(detail), " %s %.1e", names[t], rel);
  }
  // (2) the mask: q = k = 0 makes P uniform over the allowed keys, V = I (skv = d) copies it into O.
  double rate = NAN;
  size_t allowed = 0, kept = 0;
  if (c.skv == c.d && c.h == c.hg) {
    std::vector<uint16_t> zeros(call.nq, encode(c.dtype, 0.0)), zeros_k(call.nk, encode(c.dtype, 0.0)),
        eye(call.nk, encode(c.dtype, 0.0));
    for (int e = 0; e < c.b; ++e)
      for (int j = 0; j < c.skv; ++j)
        for (int hh = 0; hh < c.hg; ++hh) eye[((size_t(e) * c.skv + j) * c.hg + hh) * c.d + j] = encode(c.dtype, 1.0);
    call.upload(call.q, zeros), call.upload(call.k, zeros_k), call.upload(call.v, eye);
    if (!call.forward()) return false;
    const std::vector<double> o = call.fetch(call.o, call.nq);
    for (int e = 0; e < c.b; ++e)
      for (int i = 0; i < c.sq; ++i)
        for (int hh = 0; hh < c.h; ++hh)
          for (int j = 0; j < c.skv; ++j) {
            if (c.causal && j > i) continue;
            ++allowed;
            kept += o[((size_t(e) * c.sq + i) * c.h + hh) * c.d + j] > 0;
          }
    rate = double(kept) / double(allowed);
  }
  const double keep = 1.0 - c.dropout, sigma = std::sqrt(c.dropout * keep / double(std::max<size_t>(allowed, 1)));
  const bool rate_ok = std::isnan(rate) || std::fabs(rate - keep) < 5 * sigma;
  const bool ok = same && differs && worst < 2e-2 && rate_ok;
  std::printf("%-22s %s dropout %.2f: same seed same bits %s, other seed differs %s, keep rate %.4f (want %.4f +- %.4f "
              "at 5 sigma, %zu draws), grad vs central difference rel err%s (tol 2e-2)\n",
              c.name, ok ? "PASS" : "FAIL", c.dropout, same ? "yes" : "NO", differs ? "yes" : "NO", rate, keep,
              5 * sigma, allowed, detail);
  return ok;
}

bool run(const Config& c, std::mt19937& rng, FILE* csv) {
  if (c.dropout > 0 && c.check) return dropoutChecks(c, rng);
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
  const Packing pq(c.thd, c.b, c.sq, c.h, c.d, lq), pk(c.thd, c.b, c.skv, c.hg, c.d, lk);
  const size_t sq_elems = pq.elements(), sk_elems = pk.elements();
  DeviceBuffer dq_in(sq_elems * 2), dk_in(sk_elems * 2), dv_in(sk_elems * 2), ddo(sq_elems * 2),
      dout_o(sq_elems * 2), dlse(nlse * 4), ddq(sq_elems * 2), ddk(sk_elems * 2), ddv(sk_elems * 2),
      dcuq((c.b + 1) * 4), dcuk((c.b + 1) * 4), dtokq((c.b + 1) * 4), dtokk((c.b + 1) * 4);
  auto upload = [](DeviceBuffer& to, const std::vector<uint16_t>& from) {
    CUDA_OK(cudaMemcpy(to.p, from.data(), from.size() * 2, cudaMemcpyHostToDevice));
  };
  const uint16_t zero16 = 0;
  upload(dq_in, pq.pack(hq, zero16)), upload(dk_in, pk.pack(hk, zero16)), upload(dv_in, pk.pack(hv, zero16));
  upload(ddo, pq.pack(hdo, zero16));
  CUDA_OK(cudaMemcpy(dcuq.p, cuq.data(), (c.b + 1) * 4, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dcuk.p, cuk.data(), (c.b + 1) * 4, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dtokq.p, pq.tok.data(), (c.b + 1) * 4, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dtokk.p, pk.tok.data(), (c.b + 1) * 4, cudaMemcpyHostToDevice));
  // Poison every output (0xFF bytes are NaN in fp16, bf16 and fp32).
  for (DeviceBuffer* b : {&dout_o, &dlse, &ddq, &ddk, &ddv}) CUDA_OK(cudaMemset(b->p, 0xFF, b->bytes));

  te_attn_desc d{};
  d.format = c.thd ? TE_THD : TE_BSHD, d.dtype = c.dtype, d.b = c.b, d.h = c.h, d.hg = c.hg, d.d = c.d, d.dv = c.d;
  d.sq = c.sq, d.skv = c.skv, d.causal = c.causal, d.bottom_right = c.bottom_right;
  d.tq = int64_t(pq.rows()), d.tkv = int64_t(pk.rows());
  d.window_left = -1, d.window_right = c.causal ? 0 : c.right, d.scale = float(1.0 / std::sqrt(double(c.d)));
  d.deterministic = c.deterministic, d.window_left = c.left;
  te_attn_bwd_args g{};
  te_attn_fwd_args& f = g.fwd;
  f.q = pq.view(dq_in.p), f.k = pk.view(dk_in.p), f.v = pk.view(dv_in.p), f.o = pq.out(dout_o.p);
  f.lse = static_cast<float*>(dlse.p), f.lse_numel = int64_t(nlse);
  if (c.padded || c.thd)
    f.cu_seqlens_q = static_cast<int32_t*>(dcuq.p), f.cu_seqlens_kv = static_cast<int32_t*>(dcuk.p);
  if (c.thd)
    f.cu_seqlens_q_padded = static_cast<int32_t*>(dtokq.p), f.cu_seqlens_kv_padded = static_cast<int32_t*>(dtokk.p);
  g.d_o = pq.view(ddo.p);
  g.dq = pq.out(ddq.p), g.dk = pk.out(ddk.p), g.dv = pk.out(ddv.p);

  // post_scale_bias [bias_b, bias_h, sq, skv] with row stride skv + bias_pad, and ALiBi slopes.
  const int bias_b = c.bias && c.bias[0] == 'b' ? c.b : 1, bias_h = c.bias && c.bias[1] == 'h' ? c.h : 1;
  const int64_t bias_ss = c.skv + c.bias_pad, bias_sh = bias_ss * c.sq, bias_sb = bias_sh * bias_h;
  const size_t nbias = c.bias ? size_t(bias_sb) * bias_b : 0, ndbias = size_t(bias_b) * bias_h * c.sq * c.skv;
  std::vector<double> bias_strided, bias;
  auto hbias = randomTensor(c.dtype, nbias, rng, bias_strided);
  for (int eb = 0; eb < (c.bias ? bias_b : 0); ++eb)
    for (int hb = 0; hb < bias_h; ++hb)
      for (int i = 0; i < c.sq; ++i)
        for (int j = 0; j < c.skv; ++j) bias.push_back(bias_strided[eb * bias_sb + hb * bias_sh + i * bias_ss + j]);
  const int slopes_b = c.alibi == 2 ? c.b : 1;
  std::vector<float> slopes32;
  std::uniform_real_distribution<double> slope_dist(0.01, 0.6);
  for (int x = 0; x < (c.alibi ? slopes_b * c.h : 0); ++x) slopes32.push_back(float(slope_dist(rng)));
  const std::vector<double> slopes(slopes32.begin(), slopes32.end());
  DeviceBuffer dbias_in(nbias * 2), ddbias(ndbias * 2), dslopes(slopes32.size() * 4);
  if (c.bias) {
    CUDA_OK(cudaMemcpy(dbias_in.p, hbias.data(), nbias * 2, cudaMemcpyHostToDevice));
    d.bias_type = TE_POST_SCALE_BIAS, d.bias_dtype = c.dtype, d.bias_b = bias_b, d.bias_h = bias_h;
    f.bias = dbias_in.p, f.bias_numel = int64_t(nbias), f.bias_sb = bias_sb, f.bias_sh = bias_sh, f.bias_ss = bias_ss;
    if (c.dbias) {
      CUDA_OK(cudaMemset(ddbias.p, 0xFF, ndbias * 2));
      g.dbias = ddbias.p, g.dbias_numel = int64_t(ndbias);
    }
  }
  std::vector<float> offsets32;
  std::normal_distribution<double> offset_dist(0.0, 1.0);
  for (int hh = 0; hh < (c.softmax == 2 ? c.h : 0); ++hh) offsets32.push_back(float(offset_dist(rng)));
  DeviceBuffer doffsets(offsets32.size() * 4), ddoffsets(offsets32.size() * 4);
  d.softmax_type = te_softmax_type(c.softmax);
  if (c.softmax == 2) {
    CUDA_OK(cudaMemcpy(doffsets.p, offsets32.data(), offsets32.size() * 4, cudaMemcpyHostToDevice));
    f.softmax_offset = static_cast<const float*>(doffsets.p), g.d_softmax_offset = static_cast<float*>(ddoffsets.p);
  }
  if (c.alibi) {
    CUDA_OK(cudaMemcpy(dslopes.p, slopes32.data(), slopes32.size() * 4, cudaMemcpyHostToDevice));
    d.bias_type = TE_ALIBI, d.alibi_per_batch = c.alibi == 2;
    f.alibi_slopes = static_cast<const float*>(dslopes.p);
  }

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
    p.scale = d.scale, p.causal = c.causal, p.bottom_right = c.bottom_right, p.left = c.left, p.right = c.right;
    p.softmax = c.softmax, p.offset.assign(offsets32.begin(), offsets32.end());
    const Reference ref = referenceOf(p, q, k, v, dout, bias, bias_b, bias_h, slopes, slopes_b);
    const std::vector<double>&ro = ref.o, &rlse = ref.lse, &rdq = ref.dq, &rdk = ref.dk, &rdv = ref.dv;
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
    const double eo = relErr(pq.unpack(fetch16(dout_o, sq_elems)), ro, all), el = relErr(lse, rlse, all);
    const double eq = relErr(pq.unpack(fetch16(ddq, sq_elems)), rdq, all),
                 ek = relErr(pk.unpack(fetch16(ddk, sk_elems)), rdk, all),
                 ev = relErr(pk.unpack(fetch16(ddv, sk_elems)), rdv, all);
    const double tol = c.dtype == TE_BF16 ? 2e-2 : 1e-2;
    const double edb = c.dbias ? relErr(fetch16(ddbias, ndbias), ref.dbias, all) : 0.0;
    ok = eo < tol && el < 1e-3 && eq < tol && ek < tol && ev < tol && edb < tol;
    std::snprintf(line, sizeof line, "%-22s %s rel err o %.2e lse %.2e dq %.2e dk %.2e dv %.2e%s (tol %.0e)", c.name,
                  ok ? "PASS" : "FAIL", eo, el, eq, ek, ev,
                  c.dbias ? (" dbias " + std::to_string(edb)).c_str() : "", tol);
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

// $CUDNN_TEST_ONLY: comma-separated substrings; when set, only configs whose name holds one run.
bool selected(const char* name) {
  const char* only = std::getenv("CUDNN_TEST_ONLY");
  if (only == nullptr || *only == 0) return true;
  std::string list = only;
  for (size_t start = 0; start <= list.size();) {
    const size_t end = std::min(list.find(',', start), list.size());
    const std::string part = list.substr(start, end - start);
    if (!part.empty() && std::string(name).find(part) != std::string::npos) return true;
    start = end + 1;
  }
  return false;
}

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // every line reaches the log even if a time limit kills us
  std::printf("cuDNN version loaded: %d; backends: %s\n", te_cudnn_version(), te_attn_backends());
  // --check: correctness only; --time: timings only; otherwise both.
  const std::string mode = argc > 1 ? argv[1] : "all";
  const bool checking = mode != "--time", timing = mode != "--check";
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
      // post_scale_bias of every shape, with dBias (cuDNN's dP-workspace path) and without.
      {"bias_1hss_fp16", TE_F16, 2, 4, 4, 64, 128, 128, false, false, false, false, true, false, -1, "1hss", true},
      {"bias_11ss_bf16", TE_BF16, 2, 4, 4, 64, 128, 128, false, false, false, false, true, false, -1, "11ss", true},
      {"bias_b1ss_bf16", TE_BF16, 2, 4, 4, 64, 128, 128, false, false, false, false, true, false, -1, "b1ss", true},
      {"bias_bhss_fp16", TE_F16, 2, 4, 4, 64, 128, 128, true, false, false, false, true, false, -1, "bhss", true},
      {"bias_1hss_nograd_bf16", TE_BF16, 2, 4, 4, 128, 128, 128, true, false, false, false, true, false, -1, "1hss"},
      {"bias_b1ss_nograd_fp16", TE_F16, 3, 4, 4, 64, 96, 160, false, false, false, false, true, false, -1, "b1ss"},
      {"bias_strided_bf16", TE_BF16, 2, 4, 4, 64, 128, 128, false, false, false, false, true, false, -1, "1hss", true,
       0, 8},
      {"bias_gqa_causal_bf16", TE_BF16, 2, 8, 2, 64, 128, 128, true, false, false, false, true, false, -1, "1hss",
       true},
      {"bias_causal_br_fp16", TE_F16, 2, 4, 4, 64, 96, 160, true, true, false, false, true, false, -1, "1hss", true},
      {"bias_odd_len_bf16", TE_BF16, 2, 4, 4, 64, 80, 136, false, false, false, false, true, false, -1, "bhss", true},
      {"probe_bias_padded", TE_BF16, 3, 4, 4, 64, 128, 128, false, false, true, false, true, false, -1, "1hss", true,
       0, 0, true},
      {"probe_bias_window", TE_BF16, 2, 4, 4, 64, 128, 128, true, false, false, false, true, false, 16, "1hss", false,
       0, 0, true},
      // ALiBi: the slope times the signed distance under causal masks, its magnitude otherwise.
      {"alibi_causal_bf16", TE_BF16, 2, 4, 4, 64, 128, 128, true, false, false, false, true, false, -1, nullptr,
       false, 1},
      {"alibi_causal_br_fp16", TE_F16, 2, 4, 4, 64, 96, 160, true, true, false, false, true, false, -1, nullptr,
       false, 1},
      {"alibi_gqa_bf16", TE_BF16, 2, 8, 2, 64, 128, 128, true, false, false, false, true, false, -1, nullptr, false,
       1},
      // [b, h] slopes: materialised as an fp32 bias (cuDNN's slope tensor does not broadcast per entry).
      {"alibi_per_entry_bf16", TE_BF16, 2, 4, 2, 64, 128, 128, true, false, false, false, true, false, -1, nullptr,
       false, 2},
      {"alibi_per_entry_nomask_br_fp16", TE_F16, 2, 4, 4, 64, 96, 160, false, true, false, false, true, false, -1,
       nullptr, false, 2},
      // Refused by cuda.cudnn (measured wrong on cuDNN 9.19): ALiBi with per-entry lengths.
      {"probe_alibi_pad_causal", TE_BF16, 3, 4, 4, 64, 128, 160, true, true, true, false, true, false, -1, nullptr,
       false, 1, 0, true},
      {"probe_alibi_nomask", TE_BF16, 2, 4, 4, 64, 128, 128, false, false, false, false, true, false, -1, nullptr,
       false, 1, 0, true},
      {"probe_alibi_nomask_br", TE_F16, 2, 4, 4, 64, 96, 160, false, true, false, false, true, false, -1, nullptr,
       false, 1, 0, true},
      // Softmax with a sink: off_by_one (zero) and learnable offsets per head (cuDNN 9.13.1+).
      {"softmax_off_by_one_bf16", TE_BF16, 2, 4, 2, 64, 128, 128, false, false, false, false, true, false, -1,
       nullptr, false, 0, 0, false, 0, 1},
      {"softmax_obo_causal_fp16", TE_F16, 2, 4, 4, 64, 96, 160, true, true, false, false, true, false, -1, nullptr,
       false, 0, 0, false, 0, 1},
      {"softmax_learnable_fp16", TE_F16, 2, 4, 4, 64, 128, 128, false, false, false, false, true, false, -1, nullptr,
       false, 0, 0, false, 0, 2},
      {"softmax_learnable_pad_bf16", TE_BF16, 3, 4, 4, 64, 128, 160, true, false, true, false, true, false, -1,
       nullptr, false, 0, 0, false, 0, 2},
      // Windows with a right bound (no causal mask): (left, right), (-1, right), bottom-right, padded.
      {"window8_4_bf16", TE_BF16, 2, 4, 4, 64, 128, 128, false, false, false, false, true, false, 8, nullptr, false, 0,
       0, false, 0, 0, 4},
      {"window_inf_4_fp16", TE_F16, 2, 4, 2, 64, 128, 128, false, false, false, false, true, false, -1, nullptr, false,
       0, 0, false, 0, 0, 4},
      {"window16_8_br_bf16", TE_BF16, 2, 4, 4, 64, 96, 160, false, true, false, false, true, false, 16, nullptr, false,
       0, 0, false, 0, 0, 8},
      {"window12_6_pad_br_fp16", TE_F16, 3, 4, 4, 64, 128, 160, false, true, true, false, true, false, 12, nullptr,
       false, 0, 0, false, 0, 0, 6},
      // thd: packed q/k/v/o and gradients at ragged offsets, with spare rows between entries.
      {"thd_padding_bf16", TE_BF16, 3, 4, 4, 64, 128, 128, false, false, true, false, true, false, -1, nullptr, false,
       0, 0, false, 0, 0, -1, true},
      {"thd_causal_gqa_fp16", TE_F16, 3, 8, 2, 64, 96, 160, true, false, true, false, true, false, -1, nullptr, false,
       0, 0, false, 0, 0, -1, true},
      {"thd_causal_br_bf16", TE_BF16, 2, 4, 4, 128, 128, 128, true, true, true, false, true, false, -1, nullptr, false,
       0, 0, false, 0, 0, -1, true},
      {"thd_deterministic_bf16", TE_BF16, 3, 4, 4, 64, 128, 128, true, false, true, true, true, false, -1, nullptr,
       false, 0, 0, false, 0, 0, -1, true},
      // Dropout (cuDNN's Philox): determinism, keep rate and gradients (dropoutChecks).
      {"dropout20_fp16", TE_F16, 2, 4, 4, 64, 128, 64, false, false, false, false, true, false, -1, nullptr, false, 0,
       0, false, 0.2},
      {"dropout10_causal_bf16", TE_BF16, 2, 4, 4, 64, 64, 64, true, false, false, false, true, false, -1, nullptr,
       false, 0, 0, false, 0.1},
      {"dropout30_gqa_fp16", TE_F16, 2, 8, 2, 64, 128, 192, true, false, false, false, true, false, -1, nullptr, false,
       0, 0, false, 0.3},
  };
  const Config timings[] = {
      {"test_0", TE_BF16, 2, 16, 16, 64, 512, 512, false, false, false, false, false, true},
      {"test_1", TE_BF16, 2, 16, 16, 128, 2048, 2048, true, false, false, false, false, true},
      {"test_2", TE_BF16, 2, 16, 16, 128, 2048, 2048, true, false, false, false, false, true, -1, "1hss"},
      {"test_2_dbias", TE_BF16, 2, 16, 16, 128, 2048, 2048, true, false, false, false, false, true, -1, "1hss", true},
      {"test_3", TE_BF16, 2, 32, 4, 128, 8192, 8192, true, false, false, false, false, true},
      {"long_4k_full", TE_BF16, 8, 16, 16, 128, 4096, 4096, false, false, false, false, false, true},
      {"long_4k_causal", TE_BF16, 8, 16, 16, 128, 4096, 4096, true, false, false, false, false, true},
  };
  int failures = 0;
  for (const Config& c : checks) {
    if (!checking || !selected(c.name)) continue;
    const auto start = std::chrono::steady_clock::now();
    const bool ok = run(c, rng, nullptr);
    std::printf("%-22s took %.1f s (plans, reference, checks)\n", c.name,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (c.probe) std::printf("%-22s probe: %s\n", c.name, ok ? "cuDNN computes it" : "not supported or wrong");
    else failures += !ok;
  }
  if (timing)
    for (const Config& c : timings)
      if (selected(c.name)) failures += !run(c, rng, csv);
  if (csv) std::fclose(csv);
  std::printf("%d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
