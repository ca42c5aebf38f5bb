// C entry points of the cuda.unfused kernel family (separate kernels over fp32 score buffers).
#pragma once
#include <stddef.h>
#include "../common/attention_args.h"

#ifdef __cplusplus
extern "C" {
#endif

// 1 when the call can run; else 0 with a reason.
int te_cuda_unfused_explain(const te_cuda::AttentionArgs* args, char* reason, size_t reason_size);
// Device workspace (bytes) AttentionArgs.workspace must point to, for forward and backward alike.
size_t te_cuda_unfused_workspace_bytes(const te_cuda::AttentionArgs* args);
int te_cuda_unfused_forward(const te_cuda::AttentionArgs* args, void* stream);
int te_cuda_unfused_backward(const te_cuda::AttentionArgs* args, void* stream);

#ifdef __cplusplus
}
#endif
