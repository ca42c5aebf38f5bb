// Compile-time check (GPU machine, where cuDNN's headers are): every enum value that cudnn_abi.h
// declares equals cuDNN's own. Build: g++ -std=c++17 -I$CUDNN_INCLUDE -I<cuda include> -c.
#include <cudnn.h>

#include <cstdio>

#include "../cudnn_abi.h"

#define TE_CUDNN_SAME(name, value)                                                       \
  static_assert(int(te::cudnn::abi::name) == int(::name), #name " differs from cudnn.h"); \
  static_assert(int(::name) == value, #name " differs from cudnn.h");
TE_CUDNN_STATUS_VALUES(TE_CUDNN_SAME)
TE_CUDNN_DATA_TYPE_VALUES(TE_CUDNN_SAME)
TE_CUDNN_DESCRIPTOR_TYPE_VALUES(TE_CUDNN_SAME)
TE_CUDNN_ATTRIBUTE_NAME_VALUES(TE_CUDNN_SAME)
TE_CUDNN_ATTRIBUTE_TYPE_VALUES(TE_CUDNN_SAME)
TE_CUDNN_POINTWISE_MODE_VALUES(TE_CUDNN_SAME)
TE_CUDNN_REDUCE_OP_VALUES(TE_CUDNN_SAME)
TE_CUDNN_HEUR_MODE_VALUES(TE_CUDNN_SAME)
TE_CUDNN_NUMERICAL_NOTE_VALUES(TE_CUDNN_SAME)
TE_CUDNN_RNG_DISTRIBUTION_VALUES(TE_CUDNN_SAME)
#undef TE_CUDNN_SAME

static_assert(sizeof(::cudnnBackendDescriptor_t) == sizeof(te::cudnn::abi::BackendDescriptor), "descriptor size");
static_assert(sizeof(::cudnnHandle_t) == sizeof(te::cudnn::abi::Handle), "handle size");

int main() {
  std::printf("cudnn_abi_check: every declared value matches cudnn.h %d.%d.%d\n", CUDNN_MAJOR, CUDNN_MINOR,
              CUDNN_PATCHLEVEL);
  return 0;
}
