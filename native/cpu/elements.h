// fp16/bf16 <-> fp32 conversions in portable integer code (no F16C needed), round to nearest even.
#pragma once
#include <cstdint>
#include <cstring>

#include "te/te_attention.h"

namespace te::cpu {

inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t man = h & 0x3ff;
  if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (man << 13));
  if (exp != 0) return bits_to_float(sign | ((exp + 112) << 23) | (man << 13));
  // Subnormal (or zero): man * 2^-24.
  const float mag = float(man) * 5.9604644775390625e-8f;
  return sign ? -mag : mag;
}

inline uint16_t float_to_half(float f) {
  const uint32_t u = float_to_bits(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00);  // NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // rounds to >= 65520: inf
  if (a < 0x38800000u) {
    // Subnormal half: round a * 2^24 to an integer, nearest even (adding 0.5 * 2^0 via float math).
    const float mag = bits_to_float(a) * 16777216.0f;
    float r = mag + 8388608.0f;  // forces rounding to an integer in the current (nearest-even) mode
    r -= 8388608.0f;
    return uint16_t(sign | uint16_t(r));
  }
  const uint32_t rounded = a + 0xfffu + ((a >> 13) & 1u);
  return uint16_t(sign | uint16_t((rounded - 0x38000000u) >> 13));
}

inline float bf16_to_float(uint16_t h) { return bits_to_float(uint32_t(h) << 16); }

inline uint16_t float_to_bf16(float f) {
  const uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline size_t dtype_size(te_dtype t) { return t == TE_F32 ? 4 : 2; }

inline float load(const void* base, te_dtype t, int64_t i) {
  switch (t) {
    case TE_F32: return static_cast<const float*>(base)[i];
    case TE_F16: return half_to_float(static_cast<const uint16_t*>(base)[i]);
    default: return bf16_to_float(static_cast<const uint16_t*>(base)[i]);
  }
}

inline void store(void* base, te_dtype t, int64_t i, float x) {
  switch (t) {
    case TE_F32: static_cast<float*>(base)[i] = x; break;
    case TE_F16: static_cast<uint16_t*>(base)[i] = float_to_half(x); break;
    default: static_cast<uint16_t*>(base)[i] = float_to_bf16(x); break;
  }
}

// n strided elements into contiguous fp32 (the dtype switch stays outside the loop).
inline void load_row(const void* base, te_dtype t, int64_t at, int64_t step, int n, float* out) {
  if (t == TE_F32) {
    const float* p = static_cast<const float*>(base) + at;
    for (int c = 0; c < n; ++c) out[c] = p[c * step];
  } else if (t == TE_F16) {
    const uint16_t* p = static_cast<const uint16_t*>(base) + at;
    for (int c = 0; c < n; ++c) out[c] = half_to_float(p[c * step]);
  } else {
    const uint16_t* p = static_cast<const uint16_t*>(base) + at;
    for (int c = 0; c < n; ++c) out[c] = bf16_to_float(p[c * step]);
  }
}

inline void store_row(void* base, te_dtype t, int64_t at, int64_t step, int n, const float* in) {
  for (int c = 0; c < n; ++c) store(base, t, at + c * step, in[c]);
}

}  // namespace te::cpu
