// Warp-level tensor-core building blocks for sm_80+: cp.async tile loads, ldmatrix fragment loads and
// mma.sync m16n8k16 (fp16/bf16 in, fp32 accumulate).
//
// Fragment layouts (PTX ISA, "mma.m16n8k16"), lane = 4 * g + t:
//   A (16x16): a[0] = rows g,   cols 2t..2t+1      a[1] = rows g+8, cols 2t..2t+1
//              a[2] = rows g,   cols 2t+8..2t+9    a[3] = rows g+8, cols 2t+8..2t+9
//   B (16x8):  b[0] = k 2t..2t+1, col g            b[1] = k 2t+8..2t+9, col g
//   C (16x8):  c[0..1] = row g, cols 2t..2t+1      c[2..3] = row g+8, cols 2t..2t+1
// Shared-memory tiles are row-major with a padded row stride (ld elements, ld*2 a multiple of 16 bytes
// and ld*2/16 odd), which keeps the eight 16-byte rows an ldmatrix reads in distinct bank groups.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace te_cuda {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global->shared copy; when !valid the destination is zero-filled (src-size 0) so rows past a
// sequence's end hold zeros, never stale values that could be NaN.
__device__ __forceinline__ void cp_async_16(uint32_t smem, const void* gmem, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem), "l"(gmem), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, bool valid) {
  cp_async_16(smem_addr(smem), gmem, valid);
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldsm_x4(uint32_t r[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t r[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

template <typename T>
struct Mma;
template <>
struct Mma<__half> {
  static __device__ __forceinline__ void run(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
};
template <>
struct Mma<__nv_bfloat16> {
  static __device__ __forceinline__ void run(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
};

// A fragment of the 16x16 block at (m0, k0) of a tile stored as A[m][k] (kTrans = false) or as
// A[k][m] (kTrans = true, read through ldmatrix.trans).
template <bool kTrans, typename T>
__device__ __forceinline__ void load_a(uint32_t a[4], const T* s, int ld, int m0, int k0) {
  const int lane = threadIdx.x & 31, quad = lane >> 3, r = lane & 7;
  if (!kTrans) {
    ldsm_x4(a, s + (m0 + r + (quad & 1) * 8) * ld + k0 + (quad >> 1) * 8);
  } else {
    ldsm_x4_trans(a, s + (k0 + r + (quad >> 1) * 8) * ld + m0 + (quad & 1) * 8);
  }
}

// B fragments of two adjacent 16x8 blocks (columns n0..n0+15, k0..k0+15) of B stored as B[n][k]
// (kKMajor = false) or as B[k][n] (kKMajor = true). b[0..1] is the first block, b[2..3] the second.
template <bool kKMajor, typename T>
__device__ __forceinline__ void load_b2(uint32_t b[4], const T* s, int ld, int k0, int n0) {
  const int lane = threadIdx.x & 31, quad = lane >> 3, r = lane & 7;
  if (!kKMajor) {
    ldsm_x4(b, s + (n0 + r + (quad >> 1) * 8) * ld + k0 + (quad & 1) * 8);
  } else {
    ldsm_x4_trans(b, s + (k0 + r + (quad & 1) * 8) * ld + n0 + (quad >> 1) * 8);
  }
}

// acc[16 x 8*kNT] += A[16 x 16*kKSteps] * B, all operands in shared memory.
template <int kNT, int kKSteps, bool kATrans, bool kBKMajor, typename T>
__device__ __forceinline__ void warp_gemm(float (*acc)[4], const T* a_s, int lda, int m0, int a_k0,
                                          const T* b_s, int ldb, int b_k0, int n0) {
  static_assert(kNT % 2 == 0, "column tiles come in pairs");
#pragma unroll
  for (int ks = 0; ks < kKSteps; ++ks) {
    uint32_t a[4];
    load_a<kATrans>(a, a_s, lda, m0, a_k0 + ks * 16);
#pragma unroll
    for (int nt = 0; nt < kNT; nt += 2) {
      uint32_t b[4];
      load_b2<kBKMajor>(b, b_s, ldb, b_k0 + ks * 16, n0 + nt * 8);
      Mma<T>::run(acc[nt], a, b[0], b[1]);
      Mma<T>::run(acc[nt + 1], a, b[2], b[3]);
    }
  }
}

// acc[kMT][16 x 8*kNT] += A[16*kMT x 16*kKSteps] * B: kMT row tiles (at m0 + 16 * mt) share every B
// fragment, so each ldmatrix of B feeds 2 * kMT tensor-core instructions.
template <int kMT, int kNT, int kKSteps, bool kATrans, bool kBKMajor, typename T>
__device__ __forceinline__ void warp_gemm_mt(float (*acc)[kNT][4], const T* a_s, int lda, int m0, int a_k0,
                                             const T* b_s, int ldb, int b_k0, int n0) {
  static_assert(kNT % 2 == 0, "column tiles come in pairs");
#pragma unroll
  for (int ks = 0; ks < kKSteps; ++ks) {
    uint32_t a[kMT][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) load_a<kATrans>(a[mt], a_s, lda, m0 + mt * 16, a_k0 + ks * 16);
#pragma unroll
    for (int nt = 0; nt < kNT; nt += 2) {
      uint32_t b[4];
      load_b2<kBKMajor>(b, b_s, ldb, b_k0 + ks * 16, n0 + nt * 8);
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        Mma<T>::run(acc[mt][nt], a[mt], b[0], b[1]);
        Mma<T>::run(acc[mt][nt + 1], a[mt], b[2], b[3]);
      }
    }
  }
}

// Copies rows [0, kRows) x cols [0, kCols) of a global tile (row r at src + r * row_stride) into a
// padded shared tile; rows >= valid_rows are zero-filled. kThreads threads cooperate.
template <int kRows, int kCols, int kThreads, typename T>
__device__ __forceinline__ void load_tile_async(T* dst, int ld, const T* src, int64_t row_stride, int valid_rows) {
  constexpr int kChunksPerRow = kCols * int(sizeof(T)) / 16;
  constexpr int kChunks = kRows * kChunksPerRow;
  for (int c = threadIdx.x; c < kChunks; c += kThreads) {
    const int r = c / kChunksPerRow, col = (c % kChunksPerRow) * (16 / int(sizeof(T)));
    const bool valid = r < valid_rows;
    const T* g = valid ? src + r * row_stride + col : src;
    cp_async_16(dst + r * ld + col, g, valid);
  }
}

}  // namespace te_cuda
