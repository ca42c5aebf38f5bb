// The device-resident DelayedScaling state of FP8 attention (fp8_recipe_state.h): fill a call's
// scaling block from it, record the call's amaxes into it, and TE's scale update with the history
// roll. Tiny kernels (one block each) on the call's stream; they mirror packages/core's host recipe
// step for step (the comments name the core function each mirrors), in double where core computes
// in JS numbers, so the results are core's exactly.
#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "fp8_recipe_state.h"
#include "status_internal.h"

namespace te::cudnn {
namespace {

constexpr int kPassTensors = TE_FP8_TENSORS / 2;  // q, k, v, s, o | dO, dP, dQ, dK, dV
constexpr int kUpdateThreads = 256;

const double* scalesOf(const void* state) { return static_cast<const double*>(state); }
double* scalesOf(void* state) { return static_cast<double*>(state); }
float* historiesOf(void* state) { return reinterpret_cast<float*>(static_cast<char*>(state) + TE_FP8_STATE_HISTORY_BYTE); }

double fp8MaxOf(te_fp8_format f) { return f == TE_FP8_E4M3 ? 448.0 : 57344.0; }

// Math.max of JS on the values we hold: NaN if either is NaN.
__device__ float maxKeepingNaN(float a, float b) { return (b > a || b != b) ? b : a; }

// The tensor whose scale a tensor is cast and descaled with: TE's META_QKV and META_DQKV.
__device__ int scaleSourceOf(int t) {
  if (t == TE_FP8_K || t == TE_FP8_V) return TE_FP8_Q;
  if (t == TE_FP8_DK || t == TE_FP8_DV) return TE_FP8_DQ;
  return t;
}

// cudnn-fp8.ts's block layout before this state existed (hostMeta) and core's kernelScaleOfS.
__global__ void prepareKernel(const double* __restrict__ scales, double fwd_max, int first, float* __restrict__ meta) {
  const int i = threadIdx.x;
  if (i >= kPassTensors) return;
  const int t = first + i, from = scaleSourceOf(t);
  double scale = scales[TE_FP8_STATE_SCALE_AT(from)];
  double scale_inv = scales[TE_FP8_STATE_SCALE_INV_AT(from)];
  if (t == TE_FP8_S) {
    // Math.min(scale, fp8_max), NaN kept as Math.min keeps it; its inverse, not the state's.
    scale = scale > fwd_max ? fwd_max : scale;
    scale_inv = 1.0 / scale;
  }
  meta[TE_FP8_SCALE(t)] = float(scale);  // round to nearest, as a Float32Array store
  meta[TE_FP8_SCALE_INV(t)] = float(scale_inv);
  meta[TE_FP8_AMAX(t)] = 0.0f;
}

// core's recordSharedAmax (and recordAmax for each entry it records into).
__global__ void recordKernel(float* __restrict__ histories, int64_t len, const float* __restrict__ meta,
                             uint32_t tensors) {
  if (threadIdx.x != 0) return;
  auto record = [&](int t, float amax) {
    float* h = histories + int64_t(t) * len;
    h[0] = maxKeepingNaN(h[0], fabsf(amax));
  };
  const int groups[2][3] = {{TE_FP8_Q, TE_FP8_K, TE_FP8_V}, {TE_FP8_DQ, TE_FP8_DK, TE_FP8_DV}};
  uint32_t grouped = 0;
  for (const auto& g : groups) {
    float amax = 0.0f;
    bool any = false;
    for (int t : g) {
      grouped |= 1u << t;
      if (tensors & (1u << t)) any = true, amax = maxKeepingNaN(amax, fabsf(meta[TE_FP8_AMAX(t)]));
    }
    if (any)
      for (int t : g) record(t, amax);
  }
  for (int t = 0; t < TE_FP8_TENSORS; ++t)
    if ((tensors & (1u << t)) && !(grouped & (1u << t))) record(t, meta[TE_FP8_AMAX(t)]);
}

// core's updateFp8Scale (amaxOfHistory, the scale rule, the roll): one block per tensor of the pass.
__global__ void __launch_bounds__(kUpdateThreads)
    updateKernel(double* __restrict__ scales, float* __restrict__ histories, int64_t len, int first, double fwd_max,
                 double bwd_max, int most_recent, double margin_scale) {
  const int t = first + blockIdx.x, tid = threadIdx.x;
  float* h = histories + int64_t(t) * len;
  // history.reduce((m, x) => Math.max(m, x), 0)
  float amax = 0.0f;
  for (int64_t i = tid; i < len; i += kUpdateThreads) amax = maxKeepingNaN(amax, h[i]);
  for (int off = 16; off > 0; off /= 2) amax = maxKeepingNaN(amax, __shfl_down_sync(0xffffffffu, amax, off));
  __shared__ float warp_amax[kUpdateThreads / 32];
  if (tid % 32 == 0) warp_amax[tid / 32] = amax;
  __syncthreads();
  if (tid == 0) {
    for (int w = 1; w < kUpdateThreads / 32; ++w) amax = maxKeepingNaN(amax, warp_amax[w]);
    const double a = most_recent ? double(h[0]) : double(amax);
    const double fp8_max = t < kPassTensors ? fwd_max : bwd_max;
    double scale = scales[TE_FP8_STATE_SCALE_AT(t)];
    if (isfinite(a) && a > 0) scale = fp8_max / a / margin_scale;
    if (isfinite(scale) && scale > 0) {
      scales[TE_FP8_STATE_SCALE_AT(t)] = scale;
      scales[TE_FP8_STATE_SCALE_INV_AT(t)] = 1.0 / scale;
    }
  }
  __syncthreads();  // every read of the history above is done before the roll writes it
  // copyWithin(1, 0, len - 1); h[0] = 0: chunks from the top down, each read before it is written.
  for (int64_t lo = (len - 1) / kUpdateThreads * kUpdateThreads; lo >= 0; lo -= kUpdateThreads) {
    const int64_t i = lo + tid;
    const float v = (i > 0 && i < len) ? h[i - 1] : 0.0f;
    __syncthreads();
    if (i < len) h[i] = v;
    __syncthreads();
  }
}

te_status launched(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return fail(TE_ERR_CUDA, std::string(what) + ": " + cudaGetErrorString(err));
  return TE_OK;
}

bool badFormat(int f) { return f != TE_FP8_E4M3 && f != TE_FP8_E5M2; }
bool badPass(int p) { return p != TE_FP8_PASS_FORWARD && p != TE_FP8_PASS_BACKWARD; }

}  // namespace
}  // namespace te::cudnn

using namespace te::cudnn;

extern "C" te_status te_fp8_state_prepare(const void* state, te_fp8_format fwd, te_fp8_pass pass, float* meta,
                                          void* stream) {
  return te::guarded([&] {
    if (state == nullptr) return te::fail(TE_ERR_INVALID_ARGUMENT, "te_fp8_state_prepare state: a device block expected");
    if (meta == nullptr) return te::fail(TE_ERR_INVALID_ARGUMENT, "te_fp8_state_prepare meta: a device block of TE_FP8_META_FLOATS floats expected");
    if (badFormat(fwd)) return te::fail(TE_ERR_INVALID_ARGUMENT, "te_fp8_state_prepare fwd: TE_FP8_E4M3 or TE_FP8_E5M2 expected");
    if (badPass(pass)) return te::fail(TE_ERR_INVALID_ARGUMENT, "te_fp8_state_prepare pass: a te_fp8_pass expected");
    prepareKernel<<<1, 32, 0, static_cast<cudaStream_t>(stream)>>>(scalesOf(state), fp8MaxOf(fwd),
                                                                    pass == TE_FP8_PASS_FORWARD ? 0 : kPassTensors, meta);
    return launched("te_fp8_state_prepare");
  });
}

extern "C" te_status te_fp8_state_record(void* state, int64_t len, const float* meta, uint32_t tensors, void* stream) {
  return te::guarded([&] {
    if (state == nullptr) return te::fail(TE_ERR_INVALID_ARGUMENT, "te_fp8_state_record state: a device block expected");
    if (meta == nullptr) return te::fail(TE_ERR_INVALID_ARGUMENT, "te_fp8_state_record meta: a device block of TE_FP8_META_FLOATS floats expected");
    if (len < 1) return te::fail(TE_ERR_INVALID_ARGUMENT, "te_fp8_state_record history_len: >= 1 expected");
    if (tensors >= (1u << TE_FP8_TENSORS)) return te::fail(TE_ERR_INVALID_ARGUMENT, "te_fp8_state_record tensors: bits of te_fp8_tensor expected");
    if (tensors == 0) return TE_OK;
    recordKernel<<<1, 32, 0, static_cast<cudaStream_t>(stream)>>>(historiesOf(state), len, meta, tensors);
    return launched("te_fp8_state_record");
  });
}

extern "C" te_status te_fp8_state_update(void* state, int64_t len, te_fp8_format fwd, te_fp8_format bwd,
                                         te_fp8_pass pass, te_fp8_amax_algo algo, double margin_scale, void* stream) {
  return te::guarded([&] {
    if (state == nullptr) return te::fail(TE_ERR_INVALID_ARGUMENT, "te_fp8_state_update state: a device block expected");
    if (len < 1) return te::fail(TE_ERR_INVALID_ARGUMENT, "te_fp8_state_update history_len: >= 1 expected");
    if (badFormat(fwd) || badFormat(bwd)) return te::fail(TE_ERR_INVALID_ARGUMENT, "te_fp8_state_update fwd, bwd: TE_FP8_E4M3 or TE_FP8_E5M2 expected");
    if (badPass(pass)) return te::fail(TE_ERR_INVALID_ARGUMENT, "te_fp8_state_update pass: a te_fp8_pass expected");
    if (algo != TE_FP8_AMAX_MAX && algo != TE_FP8_AMAX_MOST_RECENT)
      return te::fail(TE_ERR_INVALID_ARGUMENT, "te_fp8_state_update algo: TE_FP8_AMAX_MAX or TE_FP8_AMAX_MOST_RECENT expected");
    if (!(std::isfinite(margin_scale) && margin_scale > 0))
      return te::fail(TE_ERR_INVALID_ARGUMENT, "te_fp8_state_update margin_scale: 2^margin (finite, > 0) expected");
    updateKernel<<<kPassTensors, kUpdateThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        scalesOf(state), historiesOf(state), len, pass == TE_FP8_PASS_FORWARD ? 0 : kPassTensors, fp8MaxOf(fwd),
        fp8MaxOf(bwd), algo == TE_FP8_AMAX_MOST_RECENT ? 1 : 0, margin_scale);
    return launched("te_fp8_state_update");
  });
}
