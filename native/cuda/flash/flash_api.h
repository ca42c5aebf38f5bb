// C entry points of the cuda.flash kernel family (our FlashAttention-2 style kernels).
// te_cuda_flash_explain returns 1 when the call can run; else 0 with a one-line reason in `reason`.
#pragma once
#include <stddef.h>
#include "../common/attention_args.h"

#ifdef __cplusplus
extern "C" {
#endif

int te_cuda_flash_explain(const te_cuda::AttentionArgs* args, int is_backward, char* reason, size_t reason_size);
// Bytes of device workspace AttentionArgs.workspace must point to for the backward pass.
size_t te_cuda_flash_bwd_workspace_bytes(const te_cuda::AttentionArgs* args);
// Both return a cudaError_t (0 = success); `stream` is a cudaStream_t.
int te_cuda_flash_forward(const te_cuda::AttentionArgs* args, void* stream);
int te_cuda_flash_backward(const te_cuda::AttentionArgs* args, void* stream);

#ifdef __cplusplus
}
#endif
