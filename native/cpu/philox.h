// Philox-4x32-10 and the dropout keep bits of packages/core/src/dropout-rng.ts, bit for bit.
#pragma once
#include <cstdint>

namespace te::cpu {

inline void philox4x32_10(const uint32_t in[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = in[0], c1 = in[1], c2 = in[2], c3 = in[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = uint64_t(0xd2511f53u) * c0;
    const uint64_t p1 = uint64_t(0xcd9e8d57u) * c2;
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c0 = n0;
    c1 = uint32_t(p1);
    c2 = n2;
    c3 = uint32_t(p0);
    k0 += 0x9e3779b9u;
    k1 += 0xbb67ae85u;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

// Keep bits of keys [j0, j1) of query i in (entry e, head hh): keep[j - j0].
struct DropoutStream {
  uint64_t seed;
  uint32_t offset;
  uint32_t threshold;
  int heads;

  void keep_range(int e, int hh, int i, int j0, int j1, uint8_t* keep) const {
    const uint32_t key[2] = {uint32_t(seed), uint32_t(seed >> 32)};
    uint32_t words[4];
    for (int j = j0; j < j1;) {
      const uint32_t counter[4] = {uint32_t(j >> 2), uint32_t(i), uint32_t(e * heads + hh), offset};
      philox4x32_10(counter, key, words);
      for (int w = j & 3; w < 4 && j < j1; ++w, ++j) keep[j - j0] = words[w] >= threshold ? 1 : 0;
    }
  }
};

}  // namespace te::cpu
