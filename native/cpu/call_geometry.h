// The per-call facts every CPU pass needs, validated once: entry lengths and storage rows, the
// masking geometry and the score terms (semantics.ts), checked against the buffers' element counts.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "te/te_attention.h"

namespace te::cpu {

struct Entry {
  int lq, lk;
  int64_t q_row0, kv_row0;  // first storage row of the entry (thd tokens); 0 otherwise
  int offset;               // diagonal offset: lk - lq when bottom-right aligned
};

struct CallGeometry {
  const te_attn_desc& d;
  const te_attn_fwd_args& a;
  std::vector<Entry> entries;
  std::vector<float> slopes;  // [b * h] ALiBi slopes, empty without ALiBi
  int group;                  // query heads per k/v head

  CallGeometry(const te_attn_desc& desc, const te_attn_fwd_args& args) : d(desc), a(args) {}

  // Keys [lo, hi) query i of entry en may attend to (semantics.ts allowedKeyRange).
  void allowed(const Entry& en, int i, int& lo, int& hi) const {
    lo = 0;
    hi = 0;
    if (i < 0 || i >= en.lq) return;
    const int diag = i + en.offset;
    int l = 0, h = en.lk;
    if (d.causal) h = std::min(h, diag + 1);
    if (d.window_left != -1) l = std::max(l, diag - d.window_left);
    if (d.window_right != -1) h = std::min(h, diag + d.window_right + 1);
    if (l < h) {
      lo = l;
      hi = h;
    }
  }

  bool masked_out(int e, int hh, int i, int j) const {
    if (!d.arbitrary_mask) return false;
    const int64_t mb = a.mask_b == 1 ? 0 : e;
    const int64_t mh = a.mask_h == 1 ? 0 : hh;
    return a.mask[((mb * a.mask_h + mh) * d.sq + i) * d.skv + j] != 0;
  }

  // The score of (e, hh, i, j) from the raw q.k dot product.
  float score(int e, int hh, const Entry& en, int i, int j, float dot) const;

  // The extra logit of a row's normaliser (off_by_one: 0, learnable: offset[h]); -inf for vanilla.
  float extra_logit(int hh) const {
    if (d.softmax_type == TE_SOFTMAX_OFF_BY_ONE) return 0.f;
    if (d.softmax_type == TE_SOFTMAX_LEARNABLE) return a.softmax_offset[hh];
    return -INFINITY;
  }

  int64_t q_index(const te_view& v, int e, const Entry& en, int i, int hh) const {
    return int64_t(d.format == TE_THD ? 0 : e) * v.b + (en.q_row0 + i) * v.s + int64_t(hh) * v.h;
  }
  int64_t kv_index(const te_view& v, int e, const Entry& en, int j, int hh) const {
    return int64_t(d.format == TE_THD ? 0 : e) * v.b + (en.kv_row0 + j) * v.s + int64_t(hh) * v.h;
  }
};

// Validates desc and args and fills the geometry; on failure returns a message naming the argument.
std::string build_geometry(CallGeometry& g);

// Checks that every valid element of a view lies inside its buffer; "" when it does.
std::string check_view(const CallGeometry& g, const char* name, const void* data, int64_t numel, int64_t sb,
                       int64_t ss, int64_t sh, int64_t sc, bool is_q, int heads, int channels);

}  // namespace te::cpu
