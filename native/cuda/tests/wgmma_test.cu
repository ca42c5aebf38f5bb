// Unit check of the wgmma building blocks (../common/wgmma.cuh) on one warpgroup, sm_90a only:
//   S (64 x 128) = A (64 x 128) B^T   both operands K-major in swizzled shared memory (the Q K^T form)
//   O (64 x 128) = X (64 x 128) V     X from registers (mma.sync A fragments), V MN-major (the P V form)
//   S2 (64 x 64) = A B[0:64]^T         m64n64, both K-major (the backward's K Q^T form)
//   R (64 x 64) = V[:, 0:64]^T V[:, 64:128]   m64n64, A M-major and B N-major (the backward's dS K form)
// against a double-precision host product of the same bf16 inputs. Prints the max relative error of
// each and exits 1 when any is over 1e-3 (fp32 accumulation of exact bf16 products).
#include <cuda_bf16.h>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>
#include "../common/warp_mma.cuh"
#include "../common/wgmma.cuh"

using namespace te_cuda;
using T = __nv_bfloat16;

constexpr int kM = 64, kN = 128, kK = 128;

// [rows][kK] row-major global -> swizzled 64-column panels of `rows` rows.
__device__ void load_sw(unsigned char* dst, const T* src, int rows) {
  for (int c = threadIdx.x; c < rows * kK / 8; c += blockDim.x) {
    const int r = c / (kK / 8), cc = c % (kK / 8);
    cp_async_16(dst + (cc >> 3) * (rows * 128) + sw128_offset(r, (cc & 7) * 8), src + r * kK + cc * 8, true);
  }
}

__global__ void wgmma_check_kernel(const T* a, const T* b, const T* x, const T* v, float* s_out, float* o_out,
                                   float* s2_out, float* r_out) {
  extern __shared__ __align__(16) unsigned char raw[];
  unsigned char* sA = raw + ((1024 - (smem_addr(raw) & 1023)) & 1023);
  unsigned char* sB = sA + kM * kK * 2;
  unsigned char* sV = sB + kN * kK * 2;
  load_sw(sA, a, kM);
  load_sw(sB, b, kN);
  load_sw(sV, v, kK);  // V is [kK reduction rows][kN output columns]; kN == kK here
  cp_async_commit();
  cp_async_wait<0>();
  fence_proxy_async();
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  float s[64];
  wgmma_fence();
  for (int ks = 0; ks < kK / 16; ++ks) {
    const int panel = ks / 4, col = (ks % 4) * 32;
    Wgmma<T>::ss(s, sw128_desc(smem_addr(sA) + panel * kM * 128 + col, 16, 1024),
                 sw128_desc(smem_addr(sB) + panel * kN * 128 + col, 16, 1024), ks > 0);
  }
  wgmma_commit();
  wgmma_wait<0>();
  wgmma_fence_operands(s);
  float o[64];
  for (int i = 0; i < 64; ++i) o[i] = 0.f;
  uint32_t xa[kK / 16][4];
  for (int ks = 0; ks < kK / 16; ++ks)
    for (int q = 0; q < 4; ++q) {
      const int row = warp * 16 + g + (q & 1) * 8, col = ks * 16 + 2 * t + (q >> 1) * 8;
      xa[ks][q] = *reinterpret_cast<const uint32_t*>(x + row * kK + col);
    }
  wgmma_fence();
  for (int ks = 0; ks < kK / 16; ++ks) Wgmma<T>::rs_mn(o, xa[ks], sw128_desc(smem_addr(sV) + ks * 2048, kK * 128, 1024));
  wgmma_commit();
  wgmma_wait<0>();
  wgmma_fence_operands(o);
  for (int n = 0; n < 16; ++n)
    for (int c = 0; c < 4; ++c) {
      const int row = warp * 16 + g + (c >> 1) * 8, col = n * 8 + 2 * t + (c & 1);
      s_out[row * kN + col] = s[4 * n + c];
      o_out[row * kN + col] = o[4 * n + c];
    }
  float s2[32], r[32];
  wgmma_fence();
  for (int ks = 0; ks < kK / 16; ++ks) {
    const int panel = ks / 4, col = (ks % 4) * 32;
    Wgmma<T>::ss_n64<0, 0>(s2, sw128_desc(smem_addr(sA) + panel * kM * 128 + col, 16, 1024),
                           sw128_desc(smem_addr(sB) + panel * kN * 128 + col, 16, 1024), ks > 0);
  }
  for (int ks = 0; ks < kK / 16; ++ks)
    Wgmma<T>::ss_n64<1, 1>(r, sw128_desc(smem_addr(sV) + ks * 2048, kK * 128, 1024),
                           sw128_desc(smem_addr(sV) + kK * 128 + ks * 2048, kK * 128, 1024), ks > 0);
  wgmma_commit();
  wgmma_wait<0>();
  wgmma_fence_operands(s2);
  wgmma_fence_operands(r);
  for (int n = 0; n < 8; ++n)
    for (int c = 0; c < 4; ++c) {
      const int row = warp * 16 + g + (c >> 1) * 8, col = n * 8 + 2 * t + (c & 1);
      s2_out[row * 64 + col] = s2[4 * n + c];
      r_out[row * 64 + col] = r[4 * n + c];
    }
}

int main() {
  std::mt19937 rng(7);
  std::normal_distribution<float> N(0, 1);
  auto make = [&](size_t n, std::vector<T>& h, std::vector<double>& d) {
    h.resize(n), d.resize(n);
    for (size_t i = 0; i < n; ++i) h[i] = __float2bfloat16(N(rng)), d[i] = __bfloat162float(h[i]);
  };
  std::vector<T> ha, hb, hx, hv;
  std::vector<double> da, db, dx, dv;
  make(kM * kK, ha, da), make(kN * kK, hb, db), make(kM * kK, hx, dx), make(kK * kN, hv, dv);
  T *a, *b, *x, *v;
  float *s, *o, *s2, *r;
  cudaMalloc(&a, ha.size() * 2), cudaMalloc(&b, hb.size() * 2), cudaMalloc(&x, hx.size() * 2);
  cudaMalloc(&v, hv.size() * 2), cudaMalloc(&s, kM * kN * 4), cudaMalloc(&o, kM * kN * 4);
  cudaMalloc(&s2, 64 * 64 * 4), cudaMalloc(&r, 64 * 64 * 4);
  cudaMemcpy(a, ha.data(), ha.size() * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(b, hb.data(), hb.size() * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(x, hx.data(), hx.size() * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(v, hv.data(), hv.size() * 2, cudaMemcpyHostToDevice);
  cudaMemset(s, 0xff, kM * kN * 4), cudaMemset(o, 0xff, kM * kN * 4);
  const int smem = (kM * kK + kN * kK + kK * kN) * 2 + 1024;
  cudaFuncSetAttribute(wgmma_check_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  wgmma_check_kernel<<<1, 128, smem>>>(a, b, x, v, s, o, s2, r);
  cudaError_t err = cudaDeviceSynchronize();
  if (err != cudaSuccess) {
    printf("wgmma_test: %s\n", cudaGetErrorString(err));
    return 1;
  }
  std::vector<float> gs(kM * kN), go(kM * kN), gs2(64 * 64), gr(64 * 64);
  cudaMemcpy(gs.data(), s, gs.size() * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(go.data(), o, go.size() * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(gs2.data(), s2, gs2.size() * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(gr.data(), r, gr.size() * 4, cudaMemcpyDeviceToHost);
  // Max |got - want| / max |want| of one product, with the worst element's position.
  auto report = [](const char* what, const std::vector<float>& got, int cols, auto want) {
    double err = 0, ref = 0;
    int worst = 0;
    for (int i = 0; i < int(got.size()) / cols; ++i)
      for (int j = 0; j < cols; ++j) {
        const double w = want(i, j), e = std::fabs(got[i * cols + j] - w);
        if (!(e <= err)) err = std::isnan(e) ? INFINITY : e, worst = i * cols + j;
        ref = std::max(ref, std::fabs(w));
      }
    printf("wgmma_test %-44s max rel err %.2e (worst at row %d col %d)\n", what, err / ref, worst / cols, worst % cols);
    return err / ref < 1e-3;
  };
  bool ok = report("S = A B^T (m64n128 ss, K-major)", gs, kN, [&](int i, int j) {
    double w = 0;
    for (int k = 0; k < kK; ++k) w += da[i * kK + k] * db[j * kK + k];
    return w;
  });
  ok &= report("O = X V (m64n128 rs, B MN-major)", go, kN, [&](int i, int j) {
    double w = 0;
    for (int k = 0; k < kK; ++k) w += dx[i * kK + k] * dv[k * kN + j];
    return w;
  });
  ok &= report("S2 = A B[0:64]^T (m64n64 ss, K-major)", gs2, 64, [&](int i, int j) {
    double w = 0;
    for (int k = 0; k < kK; ++k) w += da[i * kK + k] * db[j * kK + k];
    return w;
  });
  ok &= report("R = V[:,0:64]^T V[:,64:] (m64n64 ss, MN-major)", gr, 64, [&](int i, int j) {
    double w = 0;
    for (int k = 0; k < kK; ++k) w += dv[k * kN + i] * dv[k * kN + 64 + j];
    return w;
  });
  return ok ? 0 : 1;
}
