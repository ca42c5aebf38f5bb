// Float64 CPU reference of attention forward and backward for the standalone CUDA test driver: the same
// semantics as packages/core/src/semantics.ts (allowed keys, ALiBi, sinks) and dropout-rng.ts (Philox).
// Tensors are dense float64 [e][i][h][c] by sequence position (no storage strides here).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

struct RefProblem {
  int b, h, hkv, d, dv;
  std::vector<int> lq, lk;  // per entry
  int sq, skv;              // max
  double scale;
  bool causal, bottom_right;
  int left = -1, right = -1;
  std::vector<double> alibi;  // [h] or empty
  int softmax = 0;            // 0 vanilla, 1 off_by_one, 2 learnable
  std::vector<double> offset; // [h]
  std::vector<double> bias;   // [h][sq][skv] post-scale, or empty
  double dropout = 0;
  uint64_t seed = 0;
  uint32_t rng_offset = 0;
};

inline void philox_host(uint32_t c[4], uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = uint64_t(0xd2511f53u) * c[0], p1 = uint64_t(0xcd9e8d57u) * c[2];
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c[1] ^ k0, n1 = uint32_t(p1), n2 = uint32_t(p0 >> 32) ^ c[3] ^ k1,
                   n3 = uint32_t(p0);
    c[0] = n0; c[1] = n1; c[2] = n2; c[3] = n3;
    k0 += 0x9e3779b9u;
    k1 += 0xbb67ae85u;
  }
}

inline bool ref_keep(const RefProblem& p, int e, int hh, int i, int j) {
  if (p.dropout <= 0) return true;
  uint32_t c[4] = {uint32_t(j / 4), uint32_t(i), uint32_t(e * p.h + hh), p.rng_offset};
  philox_host(c, uint32_t(p.seed), uint32_t(p.seed >> 32));
  const double t = std::floor(p.dropout * 4294967296.0);
  const uint32_t thr = t >= 4294967295.0 ? 0xffffffffu : uint32_t(t);
  return c[j % 4] >= thr;
}

// Logit (natural units) of (i, j) or -inf when masked.
inline double ref_logit(const RefProblem& p, int e, int hh, int i, int j, double dot) {
  const int lq = p.lq[e], lk = p.lk[e], off = p.bottom_right ? lk - lq : 0, diag = i + off;
  int lo = 0, hi = lk;
  if (p.causal) hi = std::min(hi, diag + 1);
  if (p.left != -1) lo = std::max(lo, diag - p.left);
  if (p.right != -1) hi = std::min(hi, diag + p.right + 1);
  if (j < lo || j >= hi) return -INFINITY;
  double x = dot * p.scale;
  if (!p.bias.empty()) x += p.bias[(size_t(hh) * p.sq + i) * p.skv + j];
  if (!p.alibi.empty()) x -= p.alibi[hh] * std::fabs(double(i - j + off));
  return x;
}

// q [b][sq][h][d], k [b][skv][hkv][d], v [b][skv][hkv][dv], do [b][sq][h][dv]; outputs alike.
inline void ref_attention(const RefProblem& p, const std::vector<double>& q, const std::vector<double>& k,
                          const std::vector<double>& v, const std::vector<double>& dout, std::vector<double>& o,
                          std::vector<double>& lse, std::vector<double>& dq, std::vector<double>& dk,
                          std::vector<double>& dv) {
  const int g = p.h / p.hkv;
  o.assign(size_t(p.b) * p.sq * p.h * p.dv, 0.0);
  lse.assign(size_t(p.b) * p.h * p.sq, -INFINITY);
  dq.assign(size_t(p.b) * p.sq * p.h * p.d, 0.0);
  dk.assign(size_t(p.b) * p.skv * p.hkv * p.d, 0.0);
  dv.assign(size_t(p.b) * p.skv * p.hkv * p.dv, 0.0);
  auto Q = [&](int e, int i, int hh) { return &q[((size_t(e) * p.sq + i) * p.h + hh) * p.d]; };
  auto K = [&](int e, int j, int hk) { return &k[((size_t(e) * p.skv + j) * p.hkv + hk) * p.d]; };
  auto V = [&](int e, int j, int hk) { return &v[((size_t(e) * p.skv + j) * p.hkv + hk) * p.dv]; };
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int e = 0; e < p.b; ++e)
    for (int hk = 0; hk < p.hkv; ++hk) {
      std::vector<double> prob(p.skv), dp(p.skv);
      for (int hh = hk * g; hh < (hk + 1) * g; ++hh)
        for (int i = 0; i < p.lq[e]; ++i) {
          const double* qi = Q(e, i, hh);
          double m = p.softmax == 1 ? 0.0 : p.softmax == 2 ? p.offset[hh] : -INFINITY;
          for (int j = 0; j < p.lk[e]; ++j) {
            double dot = 0;
            for (int c = 0; c < p.d; ++c) dot += qi[c] * K(e, j, hk)[c];
            prob[j] = ref_logit(p, e, hh, i, j, dot);
            m = std::max(m, prob[j]);
          }
          if (m == -INFINITY) continue;
          double l = p.softmax == 1 ? std::exp(-m) : p.softmax == 2 ? std::exp(p.offset[hh] - m) : 0.0;
          for (int j = 0; j < p.lk[e]; ++j) l += (prob[j] = std::exp(prob[j] - m));
          for (int j = 0; j < p.lk[e]; ++j) prob[j] /= l;
          lse[(size_t(e) * p.h + hh) * p.sq + i] = m + std::log(l);
          const double ks = 1.0 / (1.0 - p.dropout);
          double* oi = &o[((size_t(e) * p.sq + i) * p.h + hh) * p.dv];
          const double* doi = &dout[((size_t(e) * p.sq + i) * p.h + hh) * p.dv];
          double dvec = 0;
          for (int j = 0; j < p.lk[e]; ++j) {
            const double z = ref_keep(p, e, hh, i, j) ? prob[j] * ks : 0.0;
            for (int c = 0; c < p.dv; ++c) oi[c] += z * V(e, j, hk)[c];
          }
          for (int c = 0; c < p.dv; ++c) dvec += oi[c] * doi[c];
          double* dqi = &dq[((size_t(e) * p.sq + i) * p.h + hh) * p.d];
          for (int j = 0; j < p.lk[e]; ++j) {
            if (prob[j] == 0) continue;
            const bool kept = ref_keep(p, e, hh, i, j);
            const double z = kept ? prob[j] * ks : 0.0;
            double dz = 0;
            for (int c = 0; c < p.dv; ++c) dz += doi[c] * V(e, j, hk)[c];
            const double ds = prob[j] * ((kept ? dz * ks : 0.0) - dvec) * p.scale;
            double* dkj = &dk[((size_t(e) * p.skv + j) * p.hkv + hk) * p.d];
            double* dvj = &dv[((size_t(e) * p.skv + j) * p.hkv + hk) * p.dv];
            for (int c = 0; c < p.dv; ++c) dvj[c] += z * doi[c];
            for (int c = 0; c < p.d; ++c) {
              dqi[c] += ds * K(e, j, hk)[c];
              dkj[c] += ds * qi[c];
            }
          }
        }
    }
}
