// FP8 attention through cuDNN on the addon (fp8_binding.cpp): adds fp8Explain, fp8Forward, fp8Backward,
// fp8Quantize, fp8Dequantize and the recipe state's fp8StatePrepare, fp8StateRecord, fp8StateUpdate to
// the module's exports.
#pragma once
#include <napi.h>

namespace te_addon {
void registerFp8(Napi::Env env, Napi::Object exports);
}
