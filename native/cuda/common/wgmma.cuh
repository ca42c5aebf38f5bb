// Hopper warpgroup MMA (wgmma.mma_async, sm_90a only) for the flash kernels: shared-memory matrix
// descriptors of 128-byte-swizzled tiles, the m64n128k16 products with fp32 accumulators, and the fences
// around them. The instructions exist only in sm_90a code: elsewhere (sm_80 builds, the host pass) the
// functions compile to nothing, and wgmma_compiled() tells the launcher not to pick such a kernel.
//
// Tiles in shared memory (all 16-bit elements): a [rows][64] panel of 128-byte rows, 8-row atoms of
// 1024 bytes, the 16-byte chunk c of row r stored at chunk c ^ (r % 8) (the 128B swizzle the hardware
// undoes); wider tiles are side-by-side panels of 64 columns. Panels start on 1024-byte boundaries.
//   K-major operand (A = Q or B = K, the reduction dim along the row): SBO = 1024 (next 8 rows), LBO
//     unused; the k-step of 16 elements inside a panel moves the start address by 32 bytes.
//   MN-major operand (B = V, the output dim along the row): LBO = panel bytes (next 64 output columns),
//     SBO = 1024 (next 8 reduction rows); the k-step of 16 rows moves the start by 2048 bytes.
// Accumulator layout of m64nNk16 (per warp w of the warpgroup, lane = 4 g + t): d[4 n + 0..1] = row
// 16 w + g, columns 8 n + 2 t + 0..1; d[4 n + 2..3] = row 16 w + g + 8, same columns; the A-from-registers
// fragment of a 16-key step equals mma.sync's m16n8k16 A fragment, so S packs into P without shuffles.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define TE_WGMMA_ENABLED 1
#else
#define TE_WGMMA_ENABLED 0
#endif

namespace te_cuda {

// Whether this compilation pass emits wgmma; a kernel built without it must never be launched.
__host__ __device__ constexpr bool wgmma_compiled() { return TE_WGMMA_ENABLED != 0; }

// Byte offset of element (r, c) in a swizzled [rows][64] panel (c within the panel).
__device__ __forceinline__ int sw128_offset(int r, int c) {
  return r * 128 + ((((c >> 3) ^ r) & 7) << 4) + (c & 7) * 2;
}

__device__ __forceinline__ uint64_t sw128_desc(uint32_t smem_addr, uint32_t lbo_bytes, uint32_t sbo_bytes) {
  return uint64_t((smem_addr & 0x3FFFF) >> 4) | (uint64_t((lbo_bytes & 0x3FFFF) >> 4) << 16) |
         (uint64_t((sbo_bytes & 0x3FFFF) >> 4) << 32) | (uint64_t(1) << 62);
}

// The descriptor of a tile `bytes` further on, from a descriptor of sw128_desc: one 32-bit add to the
// start-address field (shared addresses stay under 256 KB, so the 14-bit field never carries over).
__device__ __forceinline__ uint64_t sw128_desc_plus(uint64_t desc, uint32_t bytes) {
  return (desc & 0xFFFFFFFF00000000ull) | uint32_t(uint32_t(desc) + (bytes >> 4));
}

__device__ __forceinline__ void wgmma_fence() {
#if TE_WGMMA_ENABLED
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if TE_WGMMA_ENABLED
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wgmma_wait() {
#if TE_WGMMA_ENABLED
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// Shared memory written through the generic proxy (cp.async, st.shared) that wgmma reads next: each
// writing thread fences after its writes completed, before the barrier.
__device__ __forceinline__ void fence_proxy_async() {
#if TE_WGMMA_ENABLED
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
// Keeps the compiler from moving accesses of the accumulators across an in-flight wgmma.
template <int N>
__device__ __forceinline__ void wgmma_fence_operands(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// Keeps packed A-operand registers alive (unchanged) until the wgmma that reads them has completed.
template <int N>
__device__ __forceinline__ void wgmma_keep_operands(uint32_t (&x)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int c = 0; c < 4; ++c) asm volatile("" : "+r"(x[i][c])::"memory");
}

#define TE_WGMMA_D64 \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define TE_WGMMA_D64_OPERANDS(d) \
  "+f"((d)[0]), "+f"((d)[1]), "+f"((d)[2]), "+f"((d)[3]), "+f"((d)[4]), "+f"((d)[5]), "+f"((d)[6]), \
  "+f"((d)[7]), "+f"((d)[8]), "+f"((d)[9]), "+f"((d)[10]), "+f"((d)[11]), "+f"((d)[12]), \
  "+f"((d)[13]), "+f"((d)[14]), "+f"((d)[15]), "+f"((d)[16]), "+f"((d)[17]), "+f"((d)[18]), \
  "+f"((d)[19]), "+f"((d)[20]), "+f"((d)[21]), "+f"((d)[22]), "+f"((d)[23]), "+f"((d)[24]), \
  "+f"((d)[25]), "+f"((d)[26]), "+f"((d)[27]), "+f"((d)[28]), "+f"((d)[29]), "+f"((d)[30]), \
  "+f"((d)[31]), "+f"((d)[32]), "+f"((d)[33]), "+f"((d)[34]), "+f"((d)[35]), "+f"((d)[36]), \
  "+f"((d)[37]), "+f"((d)[38]), "+f"((d)[39]), "+f"((d)[40]), "+f"((d)[41]), "+f"((d)[42]), \
  "+f"((d)[43]), "+f"((d)[44]), "+f"((d)[45]), "+f"((d)[46]), "+f"((d)[47]), "+f"((d)[48]), \
  "+f"((d)[49]), "+f"((d)[50]), "+f"((d)[51]), "+f"((d)[52]), "+f"((d)[53]), "+f"((d)[54]), \
  "+f"((d)[55]), "+f"((d)[56]), "+f"((d)[57]), "+f"((d)[58]), "+f"((d)[59]), "+f"((d)[60]), \
  "+f"((d)[61]), "+f"((d)[62]), "+f"((d)[63])

#define TE_WGMMA_D32 \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define TE_WGMMA_D32_OPERANDS(d) \
  "+f"((d)[0]), "+f"((d)[1]), "+f"((d)[2]), "+f"((d)[3]), "+f"((d)[4]), "+f"((d)[5]), \
  "+f"((d)[6]), "+f"((d)[7]), "+f"((d)[8]), "+f"((d)[9]), "+f"((d)[10]), "+f"((d)[11]), \
  "+f"((d)[12]), "+f"((d)[13]), "+f"((d)[14]), "+f"((d)[15]), "+f"((d)[16]), "+f"((d)[17]), \
  "+f"((d)[18]), "+f"((d)[19]), "+f"((d)[20]), "+f"((d)[21]), "+f"((d)[22]), "+f"((d)[23]), \
  "+f"((d)[24]), "+f"((d)[25]), "+f"((d)[26]), "+f"((d)[27]), "+f"((d)[28]), "+f"((d)[29]), \
  "+f"((d)[30]), "+f"((d)[31])

template <typename T>
struct Wgmma;

// d (64 x 128) = (scale_d ? d : 0) + A (64 x 16, K-major in shared memory) * B (16 x 128, K-major).
#define TE_WGMMA_SS(TYPE)                                                                             \
  static __device__ __forceinline__ void ss(float (&d)[64], uint64_t a, uint64_t b, int scale_d) {    \
    asm volatile(                                                                                    \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                                  \
        "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE " {" TE_WGMMA_D64 "}, %64, %65, " \
        "p, 1, 1, 0, 0;\n}\n"                                                                          \
        : TE_WGMMA_D64_OPERANDS(d)                                                                   \
        : "l"(a), "l"(b), "r"(scale_d));                                                             \
  }
// d (64 x 128) += A (64 x 16 in registers, the mma.sync A fragment) * B (16 x 128, MN-major).
#define TE_WGMMA_RS(TYPE)                                                                             \
  static __device__ __forceinline__ void rs_mn(float (&d)[64], const uint32_t (&a)[4], uint64_t b) {   \
    asm volatile(                                                                                    \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                                   \
        "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE " {" TE_WGMMA_D64                 \
        "}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"                                               \
        : TE_WGMMA_D64_OPERANDS(d)                                                                   \
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));                               \
  }

// d (64 x 64) = (scale_d ? d : 0) + A (64 x 16) * B (16 x 64), both in shared memory; kTransA / kTransB:
// A M-major / B N-major (else K-major).
#define TE_WGMMA_SS_N64(TYPE)                                                                         \
  template <int kTransA, int kTransB>                                                                \
  static __device__ __forceinline__ void ss_n64(float (&d)[32], uint64_t a, uint64_t b, int scale_d) { \
    asm volatile(                                                                                    \
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                                  \
        "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " {" TE_WGMMA_D32 "}, %32, %33, "   \
        "p, 1, 1, %35, %36;\n}\n"                                                                      \
        : TE_WGMMA_D32_OPERANDS(d)                                                                   \
        : "l"(a), "l"(b), "r"(scale_d), "n"(kTransA), "n"(kTransB));                                 \
  }

template <>
struct Wgmma<__nv_bfloat16> {
#if TE_WGMMA_ENABLED
  TE_WGMMA_SS("bf16")
  TE_WGMMA_RS("bf16")
  TE_WGMMA_SS_N64("bf16")
#else
  static __device__ __forceinline__ void ss(float (&)[64], uint64_t, uint64_t, int) {}
  static __device__ __forceinline__ void rs_mn(float (&)[64], const uint32_t (&)[4], uint64_t) {}
  template <int kTransA, int kTransB>
  static __device__ __forceinline__ void ss_n64(float (&)[32], uint64_t, uint64_t, int) {}
#endif
};
template <>
struct Wgmma<__half> {
#if TE_WGMMA_ENABLED
  TE_WGMMA_SS("f16")
  TE_WGMMA_RS("f16")
  TE_WGMMA_SS_N64("f16")
#else
  static __device__ __forceinline__ void ss(float (&)[64], uint64_t, uint64_t, int) {}
  static __device__ __forceinline__ void rs_mn(float (&)[64], const uint32_t (&)[4], uint64_t) {}
  template <int kTransA, int kTransB>
  static __device__ __forceinline__ void ss_n64(float (&)[32], uint64_t, uint64_t, int) {}
#endif
};

#undef TE_WGMMA_SS
#undef TE_WGMMA_RS
#undef TE_WGMMA_SS_N64

}  // namespace te_cuda
