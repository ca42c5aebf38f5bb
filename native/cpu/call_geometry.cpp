#include "call_geometry.h"

#include <algorithm>
#include <cmath>

#include "elements.h"

namespace te::cpu {

float CallGeometry::score(int e, int hh, const Entry& en, int i, int j, float dot) const {
  float s;
  if (d.bias_type == TE_PRE_SCALE_BIAS || d.bias_type == TE_POST_SCALE_BIAS) {
    const int64_t at = (d.bias_b == 1 ? 0 : e) * a.bias_sb + int64_t(d.bias_h == 1 ? 0 : hh) * a.bias_sh +
                       int64_t(i) * a.bias_ss + j;
    const float bv = load(a.bias, d.bias_dtype, at);
    s = d.bias_type == TE_PRE_SCALE_BIAS ? (dot + bv) * d.scale : dot * d.scale + bv;
  } else {
    s = dot * d.scale;
  }
  if (!slopes.empty()) s -= slopes[size_t(e) * d.h + hh] * std::fabs(float(i - j + en.offset));
  return s;
}

std::string check_view(const CallGeometry& g, const char* name, const void* data, int64_t numel, int64_t sb,
                       int64_t ss, int64_t sh, int64_t sc, bool is_q, int heads, int channels) {
  if (data == nullptr) return std::string(name) + ": a buffer expected, got NULL";
  if (sb < 0 || ss < 0 || sh < 0 || sc < 0) return std::string(name) + ": non-negative strides expected";
  for (size_t e = 0; e < g.entries.size(); ++e) {
    const Entry& en = g.entries[e];
    const int len = is_q ? en.lq : en.lk;
    if (len == 0) continue;
    const int64_t row0 = is_q ? en.q_row0 : en.kv_row0;
    const int64_t last = int64_t(g.d.format == TE_THD ? 0 : e) * sb + (row0 + len - 1) * ss +
                         int64_t(heads - 1) * sh + int64_t(channels - 1) * sc;
    if (last >= numel)
      return std::string(name) + ": a buffer of at least " + std::to_string(last + 1) + " elements expected, got " +
             std::to_string(numel);
  }
  return "";
}

namespace {
// TE's default ALiBi slopes (semantics.ts defaultAlibiSlopes).
std::vector<float> default_slopes(int n) {
  const int m = 1 << int(std::floor(std::log2(double(n))));
  std::vector<float> s(n);
  for (int k = 1; k <= m; ++k) s[k - 1] = float(std::pow(2.0, -8.0 * k / m));
  for (int idx = m, k = 1; idx < n; ++idx, k += 2) s[idx] = float(std::pow(2.0, -4.0 * k / m));
  return s;
}

std::string lengths(const int32_t* cu, int b, int max, const char* name, std::vector<int>& out) {
  out.assign(b, max);
  if (cu == nullptr) return "";
  if (cu[0] != 0) return std::string(name) + ": cumulative lengths starting at 0 expected";
  for (int e = 0; e < b; ++e) {
    const int64_t len = int64_t(cu[e + 1]) - cu[e];
    if (len < 0 || len > max)
      return std::string(name) + ": non-decreasing, each length in [0, " + std::to_string(max) + "] expected";
    out[e] = int(len);
  }
  return "";
}
}  // namespace

std::string build_geometry(CallGeometry& g) {
  const te_attn_desc& d = g.d;
  const te_attn_fwd_args& a = g.a;
  if (d.b <= 0 || d.h <= 0 || d.hg <= 0 || d.d <= 0 || d.dv <= 0 || d.sq < 0 || d.skv < 0)
    return "desc: positive b, h, hg, d, dv and non-negative sq, skv expected";
  if (d.h % d.hg != 0) return "desc.hg: a divisor of h expected";
  if (int64_t(d.b) * d.h * std::max(d.sq, 1) > (int64_t(1) << 40) || int64_t(d.sq) * d.skv > (int64_t(1) << 40))
    return "desc: sizes too large";
  if (d.format != TE_BSHD && d.format != TE_SBHD && d.format != TE_THD) return "desc.format: bshd, sbhd or thd expected";
  if (d.dtype != TE_F32 && d.dtype != TE_F16 && d.dtype != TE_BF16) return "desc.dtype: fp32, fp16 or bf16 expected";
  if (!(d.dropout >= 0.f && d.dropout < 1.f)) return "desc.dropout: a probability in [0, 1) expected";
  if (d.window_left < -1 || d.window_right < -1) return "desc.window: entries >= -1 expected";
  g.group = d.h / d.hg;
  if (d.format == TE_THD && (a.cu_seqlens_q == nullptr || a.cu_seqlens_kv == nullptr))
    return "cu_seqlens_q/cu_seqlens_kv: required for thd";
  std::vector<int> lq, lk;
  if (auto m = lengths(a.cu_seqlens_q, d.b, d.sq, "cu_seqlens_q", lq); !m.empty()) return m;
  if (auto m = lengths(a.cu_seqlens_kv, d.b, d.skv, "cu_seqlens_kv", lk); !m.empty()) return m;
  const int32_t* starts_q = a.cu_seqlens_q_padded ? a.cu_seqlens_q_padded : a.cu_seqlens_q;
  const int32_t* starts_kv = a.cu_seqlens_kv_padded ? a.cu_seqlens_kv_padded : a.cu_seqlens_kv;
  g.entries.resize(d.b);
  for (int e = 0; e < d.b; ++e) {
    Entry& en = g.entries[e];
    en.lq = lq[e];
    en.lk = lk[e];
    en.q_row0 = d.format == TE_THD ? starts_q[e] : 0;
    en.kv_row0 = d.format == TE_THD ? starts_kv[e] : 0;
    if (en.q_row0 < 0 || en.kv_row0 < 0) return "cu_seqlens_*_padded: non-negative offsets expected";
    en.offset = d.bottom_right ? en.lk - en.lq : 0;
  }
  if (auto m = check_view(g, "q", a.q.data, a.q.numel, a.q.b, a.q.s, a.q.h, a.q.c, true, d.h, d.d); !m.empty()) return m;
  if (auto m = check_view(g, "k", a.k.data, a.k.numel, a.k.b, a.k.s, a.k.h, a.k.c, false, d.hg, d.d); !m.empty()) return m;
  if (auto m = check_view(g, "v", a.v.data, a.v.numel, a.v.b, a.v.s, a.v.h, a.v.c, false, d.hg, d.dv); !m.empty()) return m;
  if (auto m = check_view(g, "o", a.o.data, a.o.numel, a.o.b, a.o.s, a.o.h, a.o.c, true, d.h, d.dv); !m.empty()) return m;
  if (a.lse == nullptr || a.lse_numel < int64_t(d.b) * d.h * d.sq) return "lse: an fp32 buffer of b*h*sq elements expected";
  if (d.bias_type == TE_PRE_SCALE_BIAS || d.bias_type == TE_POST_SCALE_BIAS) {
    if ((d.bias_b != 1 && d.bias_b != d.b) || (d.bias_h != 1 && d.bias_h != d.h)) return "desc.bias_b/bias_h: 1 or b, 1 or h expected";
    if (d.bias_dtype != TE_F32 && d.bias_dtype != TE_F16 && d.bias_dtype != TE_BF16) return "desc.bias_dtype: fp32, fp16 or bf16 expected";
    if (a.bias == nullptr || a.bias_sb < 0 || a.bias_sh < 0 || a.bias_ss < 0) return "bias: a buffer with non-negative strides expected";
    if (d.sq > 0 && d.skv > 0) {
      const int64_t last = int64_t(d.bias_b - 1) * a.bias_sb + int64_t(d.bias_h - 1) * a.bias_sh +
                           int64_t(d.sq - 1) * a.bias_ss + d.skv - 1;
      if (last >= a.bias_numel) return "bias: a buffer of at least " + std::to_string(last + 1) + " elements expected";
    }
  } else if (d.bias_type == TE_ALIBI) {
    if (a.alibi_slopes == nullptr) {
      const std::vector<float> s = default_slopes(d.h);
      g.slopes.resize(size_t(d.b) * d.h);
      for (int e = 0; e < d.b; ++e) std::copy(s.begin(), s.end(), g.slopes.begin() + size_t(e) * d.h);
    } else {
      g.slopes.resize(size_t(d.b) * d.h);
      for (int e = 0; e < d.b; ++e)
        for (int hh = 0; hh < d.h; ++hh) g.slopes[size_t(e) * d.h + hh] = a.alibi_slopes[(d.alibi_per_batch ? e * d.h : 0) + hh];
    }
  } else if (d.bias_type != TE_NO_BIAS) {
    return "desc.bias_type: no_bias, pre_scale_bias, post_scale_bias or alibi expected";
  }
  if (d.arbitrary_mask) {
    if (a.mask == nullptr || (a.mask_b != 1 && a.mask_b != d.b) || (a.mask_h != 1 && a.mask_h != d.h))
      return "mask: a [b|1, h|1, sq, skv] uint8 mask expected";
    if (a.mask_numel < int64_t(a.mask_b) * a.mask_h * d.sq * d.skv) return "mask: too few elements for [mask_b, mask_h, sq, skv]";
  }
  if (d.softmax_type == TE_SOFTMAX_LEARNABLE && a.softmax_offset == nullptr) return "softmax_offset: [h] fp32 expected for learnable softmax";
  if (d.softmax_type < TE_SOFTMAX_VANILLA || d.softmax_type > TE_SOFTMAX_LEARNABLE) return "desc.softmax_type: vanilla, off_by_one or learnable expected";
  return "";
}

}  // namespace te::cpu
