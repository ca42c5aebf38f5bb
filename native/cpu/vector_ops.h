// Contiguous fp32 dot products and axpy written so the compiler vectorises them without
// -ffast-math: eight independent partial sums are eight SIMD lanes.
#pragma once
#include <cstddef>

namespace te::cpu {

inline float dot(const float* __restrict a, const float* __restrict b, int n) {
  float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int c = 0;
  for (; c + 8 <= n; c += 8)
    for (int l = 0; l < 8; ++l) part[l] += a[c + l] * b[c + l];
  float s = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  for (; c < n; ++c) s += a[c] * b[c];
  return s;
}

// y += alpha * x
inline void axpy(float alpha, const float* __restrict x, float* __restrict y, int n) {
  for (int c = 0; c < n; ++c) y[c] += alpha * x[c];
}

// out[j] = sum_c a[c] * bt[c * ld + j] for j < n: a row against a transposed tile, the inner loop
// running over j (contiguous) so it vectorises without a horizontal reduction. Built for AVX2 and
// baseline x86-64, picked at load time (the results are the same: no FMA contraction).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
inline void dots_transposed(const float* __restrict a, const float* __restrict bt, int ld, int depth, int n,
                            float* __restrict out) {
  for (int j = 0; j < n; ++j) out[j] = 0.f;
  for (int c = 0; c < depth; ++c) {
    const float x = a[c];
    const float* row = bt + size_t(c) * ld;
    for (int j = 0; j < n; ++j) out[j] += x * row[j];
  }
}

inline void scale_in_place(float alpha, float* y, int n) {
  for (int c = 0; c < n; ++c) y[c] *= alpha;
}

}  // namespace te::cpu
