// native.cpu: flash-style attention on the host. Forward tiles (entry, head, query tile) with an
// online softmax, so memory stays linear in sequence length; backward recomputes probabilities from
// the saved lse in two race-free passes: dK/dV over (entry, k/v head, key tile), then dQ (and dbias)
// over query tiles. Every output element is written by one task, so results are deterministic.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "call_geometry.h"
#include "elements.h"
#include "parallel_for.h"
#include "philox.h"
#include "status_internal.h"
#include "vector_ops.h"

namespace te::cpu {
namespace {

constexpr int kTileQ = 32;
constexpr int kTileK = 64;

DropoutStream dropout_of(const te_attn_desc& d) {
  return DropoutStream{d.dropout_seed, d.dropout_offset, d.dropout_threshold, d.h};
}

// K and V rows [j0, j1) of (entry e, k/v head kvh) as contiguous fp32, and transposed ([channel][key],
// leading dimension kTileK) for the row-against-tile products.
void load_kv_tile(const CallGeometry& g, int e, const Entry& en, int kvh, int j0, int j1, float* kt, float* vt,
                  float* ktt, float* vtt) {
  const te_attn_desc& d = g.d;
  for (int j = j0; j < j1; ++j) {
    float* krow = kt + size_t(j - j0) * d.d;
    float* vrow = vt + size_t(j - j0) * d.dv;
    load_row(g.a.k.data, d.dtype, g.kv_index(g.a.k, e, en, j, kvh), g.a.k.c, d.d, krow);
    load_row(g.a.v.data, d.dtype, g.kv_index(g.a.v, e, en, j, kvh), g.a.v.c, d.dv, vrow);
    for (int c = 0; c < d.d; ++c) ktt[size_t(c) * kTileK + (j - j0)] = krow[c];
    if (vtt != nullptr)
      for (int c = 0; c < d.dv; ++c) vtt[size_t(c) * kTileK + (j - j0)] = vrow[c];
  }
}

// Scores of row i against keys [j0, j1) into s (-inf where not allowed); returns whether any is allowed.
bool score_tile(const CallGeometry& g, int e, int hh, const Entry& en, int i, const float* qrow, const float* ktt,
                int j0, int j1, float* s) {
  int lo, hi;
  g.allowed(en, i, lo, hi);
  lo = std::max(lo, j0);
  hi = std::min(hi, j1);
  if (lo >= hi) return false;
  dots_transposed(qrow, ktt + (lo - j0), kTileK, g.d.d, hi - lo, s + (lo - j0));
  bool any = false;
  for (int j = j0; j < j1; ++j) {
    if (j < lo || j >= hi || g.masked_out(e, hh, i, j)) {
      s[j - j0] = -INFINITY;
      continue;
    }
    s[j - j0] = g.score(e, hh, en, i, j, s[j - j0]);
    any = true;
  }
  return any;
}

// The key range any row of [i0, i1) may attend to.
void tile_key_range(const CallGeometry& g, const Entry& en, int i0, int i1, int& klo, int& khi) {
  klo = en.lk;
  khi = 0;
  for (int i = i0; i < i1; ++i) {
    int lo, hi;
    g.allowed(en, i, lo, hi);
    if (lo < hi) {
      klo = std::min(klo, lo);
      khi = std::max(khi, hi);
    }
  }
}

void forward_tile(const CallGeometry& g, int e, int hh, int tile) {
  const te_attn_desc& d = g.d;
  const te_attn_fwd_args& a = g.a;
  const Entry& en = g.entries[e];
  const int i0 = tile * kTileQ, i1 = std::min(en.lq, i0 + kTileQ);
  float* lse = a.lse + (size_t(e) * d.h + hh) * d.sq;
  if (i0 >= i1) return;
  const int rows = i1 - i0, kvh = hh / g.group;
  std::vector<float> q(size_t(rows) * d.d), acc(size_t(rows) * d.dv, 0.f), m(rows), l(rows);
  std::vector<float> kt(size_t(kTileK) * d.d), vt(size_t(kTileK) * d.dv), ktt(size_t(kTileK) * d.d), s(kTileK);
  std::vector<uint8_t> keep(kTileK, 1);
  const float extra = g.extra_logit(hh);
  for (int r = 0; r < rows; ++r) {
    load_row(a.q.data, d.dtype, g.q_index(a.q, e, en, i0 + r, hh), a.q.c, d.d, &q[size_t(r) * d.d]);
    // A sink logit starts the running max and sum: exp(extra - extra) = 1.
    m[r] = extra;
    l[r] = std::isinf(extra) ? 0.f : 1.f;
  }
  const DropoutStream drop = dropout_of(d);
  const float kept_scale = d.dropout > 0 ? 1.f / (1.f - d.dropout) : 1.f;
  int klo, khi;
  tile_key_range(g, en, i0, i1, klo, khi);
  for (int j0 = klo; j0 < khi; j0 += kTileK) {
    const int j1 = std::min(khi, j0 + kTileK);
    load_kv_tile(g, e, en, kvh, j0, j1, kt.data(), vt.data(), ktt.data(), nullptr);
    for (int r = 0; r < rows; ++r) {
      const int i = i0 + r;
      if (!score_tile(g, e, hh, en, i, &q[size_t(r) * d.d], ktt.data(), j0, j1, s.data())) continue;
      float mt = -INFINITY;
      for (int j = 0; j < j1 - j0; ++j) mt = std::max(mt, s[j]);
      const float mnew = std::max(m[r], mt);
      if (std::isinf(mnew)) continue;  // every allowed score is -inf: nothing to add
      const float corr = std::isinf(m[r]) ? 0.f : std::exp(m[r] - mnew);
      float* o = &acc[size_t(r) * d.dv];
      l[r] *= corr;
      scale_in_place(corr, o, d.dv);
      m[r] = mnew;
      if (d.dropout > 0) drop.keep_range(e, hh, i, j0, j1, keep.data());
      for (int j = 0; j < j1 - j0; ++j) {
        if (std::isinf(s[j])) continue;
        const float p = std::exp(s[j] - mnew);
        l[r] += p;
        if (keep[j]) axpy(p * kept_scale, &vt[size_t(j) * d.dv], o, d.dv);
      }
    }
  }
  std::vector<float> zero(d.dv, 0.f);
  for (int r = 0; r < rows; ++r) {
    const int i = i0 + r;
    float* o = &acc[size_t(r) * d.dv];
    const int64_t at = g.q_index(reinterpret_cast<const te_view&>(a.o), e, en, i, hh);
    if (std::isinf(m[r]) || l[r] == 0.f) {
      lse[i] = -INFINITY;
      store_row(a.o.data, d.dtype, at, a.o.c, d.dv, zero.data());
      continue;
    }
    lse[i] = m[r] + std::log(l[r]);
    scale_in_place(1.f / l[r], o, d.dv);
    store_row(a.o.data, d.dtype, at, a.o.c, d.dv, o);
  }
}

te_status forward(const te_attn_desc* desc, const te_attn_fwd_args* args) {
  CallGeometry g(*desc, *args);
  if (std::string m = build_geometry(g); !m.empty()) return fail(TE_ERR_INVALID_ARGUMENT, m);
  const te_attn_desc& d = *desc;
  std::fill(args->lse, args->lse + size_t(d.b) * d.h * d.sq, -INFINITY);
  const int tiles = (d.sq + kTileQ - 1) / kTileQ;
  parallel_for(int64_t(d.b) * d.h * tiles, resolve_threads(args->num_threads), [&](int64_t t, int) {
    const int tile = int(t % tiles);
    const int hh = int((t / tiles) % d.h);
    const int e = int(t / tiles / d.h);
    forward_tile(g, e, hh, tile);
  });
  return TE_OK;
}

// What backward needs besides the forward's geometry.
struct BackwardCall {
  const CallGeometry& g;
  const te_attn_bwd_args& a;
  std::vector<float> delta;  // [b, h, sq]: dO_i . O_i
};

const te_view& as_view(const te_out_view& v) { return reinterpret_cast<const te_view&>(v); }

// dO_i . O_i of every valid row.
void compute_delta(BackwardCall& c, int threads) {
  const CallGeometry& g = c.g;
  const te_attn_desc& d = g.d;
  c.delta.assign(size_t(d.b) * d.h * d.sq, 0.f);
  parallel_for(int64_t(d.b) * d.h, threads, [&](int64_t t, int) {
    const int e = int(t / d.h), hh = int(t % d.h);
    const Entry& en = g.entries[e];
    std::vector<float> o(d.dv), dO(d.dv);
    for (int i = 0; i < en.lq; ++i) {
      load_row(g.a.o.data, d.dtype, g.q_index(as_view(g.a.o), e, en, i, hh), g.a.o.c, d.dv, o.data());
      load_row(c.a.d_o.data, d.dtype, g.q_index(c.a.d_o, e, en, i, hh), c.a.d_o.c, d.dv, dO.data());
      c.delta[(size_t(e) * d.h + hh) * d.sq + i] = dot(o.data(), dO.data(), d.dv);
    }
  });
}

// dK and dV of keys [j0, j1) of (entry e, k/v head kvh), summed over the query heads of its group.
void backward_kv_tile(const BackwardCall& c, int e, int kvh, int tile) {
  const CallGeometry& g = c.g;
  const te_attn_desc& d = g.d;
  const Entry& en = g.entries[e];
  const int j0 = tile * kTileK, j1 = std::min(en.lk, j0 + kTileK);
  if (j0 >= j1) return;
  const int keys = j1 - j0;
  std::vector<float> kt(size_t(keys) * d.d), vt(size_t(keys) * d.dv);
  std::vector<float> ktt(size_t(kTileK) * d.d), vtt(size_t(kTileK) * d.dv);
  std::vector<float> dk(size_t(keys) * d.d, 0.f), dv(size_t(keys) * d.dv, 0.f);
  std::vector<float> q(d.d), dO(d.dv), s(keys), dp(keys);
  std::vector<uint8_t> keep(keys, 1);
  load_kv_tile(g, e, en, kvh, j0, j1, kt.data(), vt.data(), ktt.data(), vtt.data());
  const DropoutStream drop = dropout_of(d);
  const float kept_scale = d.dropout > 0 ? 1.f / (1.f - d.dropout) : 1.f;
  for (int hh = kvh * g.group; hh < (kvh + 1) * g.group; ++hh) {
    const size_t row0 = (size_t(e) * d.h + hh) * d.sq;
    for (int i = 0; i < en.lq; ++i) {
      const float lse = g.a.lse[row0 + i];
      if (std::isinf(lse)) continue;
      int lo, hi;
      g.allowed(en, i, lo, hi);
      if (hi <= j0 || lo >= j1) continue;
      load_row(g.a.q.data, d.dtype, g.q_index(g.a.q, e, en, i, hh), g.a.q.c, d.d, q.data());
      if (!score_tile(g, e, hh, en, i, q.data(), ktt.data(), j0, j1, s.data())) continue;
      load_row(c.a.d_o.data, d.dtype, g.q_index(c.a.d_o, e, en, i, hh), c.a.d_o.c, d.dv, dO.data());
      if (d.dropout > 0) drop.keep_range(e, hh, i, j0, j1, keep.data());
      dots_transposed(dO.data(), vtt.data(), kTileK, d.dv, keys, dp.data());
      const float delta = c.delta[row0 + i];
      for (int j = 0; j < keys; ++j) {
        if (std::isinf(s[j])) continue;
        const float p = std::exp(s[j] - lse);
        const float z = keep[j] ? kept_scale : 0.f;
        const float ds = p * (z * dp[j] - delta);
        axpy(p * z, dO.data(), &dv[size_t(j) * d.dv], d.dv);
        axpy(d.scale * ds, q.data(), &dk[size_t(j) * d.d], d.d);
      }
    }
  }
  for (int j = j0; j < j1; ++j) {
    store_row(c.a.dk.data, d.dtype, g.kv_index(as_view(c.a.dk), e, en, j, kvh), c.a.dk.c, d.d, &dk[size_t(j - j0) * d.d]);
    store_row(c.a.dv.data, d.dtype, g.kv_index(as_view(c.a.dv), e, en, j, kvh), c.a.dv.c, d.dv, &dv[size_t(j - j0) * d.dv]);
  }
}

// dQ of query rows of one tile for the (entry, head) pairs of one dbias slot, and that slot's dbias rows.
// Without dbias every slot is one (entry, head); with a bias broadcast over b or h the slot covers all
// the pairs that share its rows, in a fixed order.
void backward_q_tile(const BackwardCall& c, int slot_b, int slot_h, bool all_b, bool all_h, int tile,
                     std::vector<float>& dbias_rows) {
  const CallGeometry& g = c.g;
  const te_attn_desc& d = g.d;
  const int i0 = tile * kTileQ, i1 = std::min(d.sq, i0 + kTileQ);
  const bool want_dbias = c.a.dbias != nullptr;
  if (want_dbias) std::fill(dbias_rows.begin(), dbias_rows.end(), 0.f);
  const float dbias_factor = d.bias_type == TE_PRE_SCALE_BIAS ? d.scale : 1.f;
  std::vector<float> kt(size_t(kTileK) * d.d), vt(size_t(kTileK) * d.dv), s(kTileK), dp(kTileK);
  std::vector<float> ktt(size_t(kTileK) * d.d), vtt(size_t(kTileK) * d.dv);
  std::vector<float> q(size_t(kTileQ) * d.d), dO(size_t(kTileQ) * d.dv), dq(size_t(kTileQ) * d.d);
  std::vector<uint8_t> keep(kTileK, 1);
  const DropoutStream drop = dropout_of(d);
  const float kept_scale = d.dropout > 0 ? 1.f / (1.f - d.dropout) : 1.f;
  for (int e = all_b ? 0 : slot_b; e < (all_b ? d.b : slot_b + 1); ++e) {
    const Entry& en = g.entries[e];
    const int r1 = std::min(i1, en.lq);
    if (i0 >= r1) continue;
    const int rows = r1 - i0;
    for (int hh = all_h ? 0 : slot_h; hh < (all_h ? d.h : slot_h + 1); ++hh) {
      const int kvh = hh / g.group;
      const size_t row0 = (size_t(e) * d.h + hh) * d.sq;
      std::fill(dq.begin(), dq.end(), 0.f);
      for (int r = 0; r < rows; ++r) {
        load_row(g.a.q.data, d.dtype, g.q_index(g.a.q, e, en, i0 + r, hh), g.a.q.c, d.d, &q[size_t(r) * d.d]);
        load_row(c.a.d_o.data, d.dtype, g.q_index(c.a.d_o, e, en, i0 + r, hh), c.a.d_o.c, d.dv, &dO[size_t(r) * d.dv]);
      }
      int klo, khi;
      tile_key_range(g, en, i0, r1, klo, khi);
      for (int j0 = klo; j0 < khi; j0 += kTileK) {
        const int j1 = std::min(khi, j0 + kTileK);
        load_kv_tile(g, e, en, kvh, j0, j1, kt.data(), vt.data(), ktt.data(), vtt.data());
        for (int r = 0; r < rows; ++r) {
          const int i = i0 + r;
          const float lse = g.a.lse[row0 + i];
          if (std::isinf(lse)) continue;
          if (!score_tile(g, e, hh, en, i, &q[size_t(r) * d.d], ktt.data(), j0, j1, s.data())) continue;
          if (d.dropout > 0) drop.keep_range(e, hh, i, j0, j1, keep.data());
          dots_transposed(&dO[size_t(r) * d.dv], vtt.data(), kTileK, d.dv, j1 - j0, dp.data());
          const float delta = c.delta[row0 + i];
          for (int j = 0; j < j1 - j0; ++j) {
            if (std::isinf(s[j])) continue;
            const float p = std::exp(s[j] - lse);
            const float z = keep[j] ? kept_scale : 0.f;
            const float ds = p * (z * dp[j] - delta);
            axpy(d.scale * ds, &kt[size_t(j) * d.d], &dq[size_t(r) * d.d], d.d);
            if (want_dbias) dbias_rows[size_t(r) * d.skv + j0 + j] += dbias_factor * ds;
          }
        }
      }
      for (int r = 0; r < rows; ++r)
        store_row(c.a.dq.data, d.dtype, g.q_index(as_view(c.a.dq), e, en, i0 + r, hh), c.a.dq.c, d.d, &dq[size_t(r) * d.d]);
    }
  }
  if (want_dbias) {
    // dbias is contiguous [bias_b, bias_h, sq, skv]; rows of this slot and tile.
    const int64_t base = ((int64_t(slot_b) * d.bias_h + slot_h) * d.sq + i0) * d.skv;
    for (int r = 0; r < i1 - i0; ++r)
      store_row(c.a.dbias, d.bias_dtype, base + int64_t(r) * d.skv, 1, d.skv, &dbias_rows[size_t(r) * d.skv]);
  }
}

te_status backward(const te_attn_desc* desc, const te_attn_bwd_args* args) {
  CallGeometry g(*desc, args->fwd);
  if (std::string m = build_geometry(g); !m.empty()) return fail(TE_ERR_INVALID_ARGUMENT, m);
  const te_attn_desc& d = *desc;
  const te_attn_bwd_args& a = *args;
  struct Out { const char* name; const void* data; int64_t numel, b, s, h, c; bool q; int heads, ch; };
  const Out outs[] = {
      {"dO", a.d_o.data, a.d_o.numel, a.d_o.b, a.d_o.s, a.d_o.h, a.d_o.c, true, d.h, d.dv},
      {"dq", a.dq.data, a.dq.numel, a.dq.b, a.dq.s, a.dq.h, a.dq.c, true, d.h, d.d},
      {"dk", a.dk.data, a.dk.numel, a.dk.b, a.dk.s, a.dk.h, a.dk.c, false, d.hg, d.d},
      {"dv", a.dv.data, a.dv.numel, a.dv.b, a.dv.s, a.dv.h, a.dv.c, false, d.hg, d.dv},
  };
  for (const Out& o : outs)
    if (std::string m = check_view(g, o.name, o.data, o.numel, o.b, o.s, o.h, o.c, o.q, o.heads, o.ch); !m.empty())
      return fail(TE_ERR_INVALID_ARGUMENT, m);
  const bool has_bias = d.bias_type == TE_PRE_SCALE_BIAS || d.bias_type == TE_POST_SCALE_BIAS;
  if (a.dbias != nullptr && (!has_bias || a.dbias_numel < int64_t(d.bias_b) * d.bias_h * d.sq * d.skv))
    return fail(TE_ERR_INVALID_ARGUMENT, "dbias: a [bias_b, bias_h, sq, skv] buffer, only with pre/post_scale_bias");
  if (d.softmax_type == TE_SOFTMAX_LEARNABLE && a.d_softmax_offset == nullptr)
    return fail(TE_ERR_INVALID_ARGUMENT, "d_softmax_offset: [h] fp32 expected for learnable softmax");
  const int threads = resolve_threads(a.fwd.num_threads);
  BackwardCall c{g, a, {}};
  compute_delta(c, threads);

  const int ktiles = (d.skv + kTileK - 1) / kTileK;
  parallel_for(int64_t(d.b) * d.hg * ktiles, threads, [&](int64_t t, int) {
    const int tile = int(t % ktiles);
    const int kvh = int((t / ktiles) % d.hg);
    const int e = int(t / ktiles / d.hg);
    backward_kv_tile(c, e, kvh, tile);
  });

  const bool all_b = a.dbias != nullptr && d.bias_b == 1;
  const bool all_h = a.dbias != nullptr && d.bias_h == 1;
  const int slots_b = all_b ? 1 : d.b, slots_h = all_h ? 1 : d.h;
  const int qtiles = (d.sq + kTileQ - 1) / kTileQ;
  std::vector<std::vector<float>> dbias_rows(threads);
  if (a.dbias != nullptr)
    for (auto& rows : dbias_rows) rows.assign(size_t(kTileQ) * d.skv, 0.f);
  parallel_for(int64_t(slots_b) * slots_h * qtiles, threads, [&](int64_t t, int worker) {
    const int tile = int(t % qtiles);
    const int sh = int((t / qtiles) % slots_h);
    const int sb = int(t / qtiles / slots_h);
    backward_q_tile(c, sb, sh, all_b, all_h, tile, dbias_rows[worker]);
  });

  if (d.softmax_type == TE_SOFTMAX_LEARNABLE) {
    // d(offset_h) = -sum_i exp(offset_h - lse_i) * D_i, summed serially (cheap, deterministic).
    for (int hh = 0; hh < d.h; ++hh) {
      double acc = 0;
      const float extra = g.extra_logit(hh);
      for (int e = 0; e < d.b; ++e)
        for (int i = 0; i < g.entries[e].lq; ++i) {
          const size_t r = (size_t(e) * d.h + hh) * d.sq + i;
          if (!std::isinf(a.fwd.lse[r])) acc -= std::exp(double(extra) - a.fwd.lse[r]) * c.delta[r];
        }
      a.d_softmax_offset[hh] = float(acc);
    }
  }
  return TE_OK;
}

te_status explain(const te_attn_desc* d, char* reason, size_t n) {
  // The CPU kernel runs every feature of the descriptor; only malformed descriptors are refused.
  std::string why;
  if (d->dtype != TE_F32 && d->dtype != TE_F16 && d->dtype != TE_BF16) why = "native.cpu stores fp32, fp16 or bf16 only";
  else if (d->h <= 0 || d->hg <= 0 || d->h % d->hg != 0) why = "native.cpu needs h divisible by hg";
  if (!why.empty() && reason != nullptr && n > 0) {
    std::strncpy(reason, why.c_str(), n - 1);
    reason[n - 1] = '\0';
  }
  return why.empty() ? TE_OK : TE_ERR_UNSUPPORTED;
}

}  // namespace
}  // namespace te::cpu

namespace te {
std::vector<te_attn_family> builtin_families() {
  std::vector<te_attn_family> f;
  f.push_back(te_attn_family{"cpu", cpu::explain, cpu::forward, cpu::backward});
  return f;
}
}  // namespace te

extern "C" void te_philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
  te::cpu::philox4x32_10(counter, key, out);
}
