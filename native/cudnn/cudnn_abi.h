// Our own declarations of the part of cuDNN 9's C backend (graph) API that cuda.cudnn uses, so the
// library builds without cuDNN's headers; cuDNN itself is dlopened at run time (cudnn_library.h).
// Each enum value is a fact of cuDNN's public headers (cudnn_graph.h); the lists are X-macros so
// that tests/cudnn_abi_check.cpp can static_assert every value against the real headers.
#pragma once
#include <cstddef>
#include <cstdint>

namespace te::cudnn::abi {

using Status = int;
using Handle = struct HandleOpaque*;
using BackendDescriptor = void*;
using Stream = void*;  // cudaStream_t

#define TE_CUDNN_STATUS_VALUES(X) \
  X(CUDNN_STATUS_SUCCESS, 0)      \
  X(CUDNN_STATUS_BAD_PARAM, 2000) \
  X(CUDNN_STATUS_NOT_SUPPORTED, 3000)

#define TE_CUDNN_DATA_TYPE_VALUES(X) \
  X(CUDNN_DATA_FLOAT, 0)             \
  X(CUDNN_DATA_HALF, 2)              \
  X(CUDNN_DATA_INT32, 4)             \
  X(CUDNN_DATA_INT64, 10)            \
  X(CUDNN_DATA_BFLOAT16, 9)          \
  X(CUDNN_DATA_BOOLEAN, 11)          \
  X(CUDNN_DATA_FP8_E4M3, 12)         \
  X(CUDNN_DATA_FP8_E5M2, 13)

#define TE_CUDNN_DESCRIPTOR_TYPE_VALUES(X)           \
  X(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, 0)           \
  X(CUDNN_BACKEND_ENGINE_DESCRIPTOR, 2)              \
  X(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, 3)           \
  X(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, 4)          \
  X(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, 5)      \
  X(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, 13) \
  X(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, 15)     \
  X(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, 16)       \
  X(CUDNN_BACKEND_TENSOR_DESCRIPTOR, 17)             \
  X(CUDNN_BACKEND_MATMUL_DESCRIPTOR, 18)             \
  X(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, 19)   \
  X(CUDNN_BACKEND_REDUCTION_DESCRIPTOR, 21)          \
  X(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, 22) \
  X(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, 31) \
  X(CUDNN_BACKEND_RNG_DESCRIPTOR, 32)                \
  X(CUDNN_BACKEND_OPERATION_RNG_DESCRIPTOR, 33)

#define TE_CUDNN_ATTRIBUTE_NAME_VALUES(X)                  \
  X(CUDNN_ATTR_POINTWISE_MODE, 0)                          \
  X(CUDNN_ATTR_POINTWISE_MATH_PREC, 1)                     \
  X(CUDNN_ATTR_POINTWISE_AXIS, 9)                          \
  X(CUDNN_ATTR_ENGINEHEUR_MODE, 200)                       \
  X(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, 201)            \
  X(CUDNN_ATTR_ENGINEHEUR_RESULTS, 202)                    \
  X(CUDNN_ATTR_ENGINECFG_ENGINE, 300)                      \
  X(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, 400)                 \
  X(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, 401)          \
  X(CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, 402)         \
  X(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, 750)     \
  X(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, 751)             \
  X(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, 752)             \
  X(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, 753)             \
  X(CUDNN_ATTR_OPERATION_POINTWISE_TDESC, 758)             \
  X(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, 800)                 \
  X(CUDNN_ATTR_OPERATIONGRAPH_OPS, 801)                    \
  X(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, 900)                 \
  X(CUDNN_ATTR_TENSOR_DATA_TYPE, 901)                      \
  X(CUDNN_ATTR_TENSOR_DIMENSIONS, 902)                     \
  X(CUDNN_ATTR_TENSOR_STRIDES, 903)                        \
  X(CUDNN_ATTR_TENSOR_UNIQUE_ID, 906)                      \
  X(CUDNN_ATTR_TENSOR_IS_VIRTUAL, 907)                     \
  X(CUDNN_ATTR_TENSOR_IS_BY_VALUE, 908)                    \
  X(CUDNN_ATTR_TENSOR_RAGGED_OFFSET_DESC, 913)             \
  X(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, 1000)              \
  X(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, 1001)           \
  X(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, 1003)               \
  X(CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, 1303)                \
  X(CUDNN_ATTR_MATMUL_COMP_TYPE, 1500)                     \
  X(CUDNN_ATTR_OPERATION_MATMUL_ADESC, 1520)               \
  X(CUDNN_ATTR_OPERATION_MATMUL_BDESC, 1521)               \
  X(CUDNN_ATTR_OPERATION_MATMUL_CDESC, 1522)               \
  X(CUDNN_ATTR_OPERATION_MATMUL_DESC, 1523)                \
  X(CUDNN_ATTR_OPERATION_MATMUL_GEMM_M_OVERRIDE_DESC, 1525) \
  X(CUDNN_ATTR_OPERATION_MATMUL_GEMM_N_OVERRIDE_DESC, 1526) \
  X(CUDNN_ATTR_OPERATION_MATMUL_GEMM_K_OVERRIDE_DESC, 1527) \
  X(CUDNN_ATTR_REDUCTION_OPERATOR, 1600)                   \
  X(CUDNN_ATTR_REDUCTION_COMP_TYPE, 1601)                  \
  X(CUDNN_ATTR_OPERATION_REDUCTION_XDESC, 1610)            \
  X(CUDNN_ATTR_OPERATION_REDUCTION_YDESC, 1611)            \
  X(CUDNN_ATTR_OPERATION_REDUCTION_DESC, 1612)             \
  X(CUDNN_ATTR_OPERATION_RESHAPE_XDESC, 2200)              \
  X(CUDNN_ATTR_OPERATION_RESHAPE_YDESC, 2201)              \
  X(CUDNN_ATTR_RNG_DISTRIBUTION, 2300)                     \
  X(CUDNN_ATTR_RNG_BERNOULLI_DIST_PROBABILITY, 2305)       \
  X(CUDNN_ATTR_OPERATION_RNG_YDESC, 2310)                  \
  X(CUDNN_ATTR_OPERATION_RNG_SEED, 2311)                   \
  X(CUDNN_ATTR_OPERATION_RNG_DESC, 2312)                   \
  X(CUDNN_ATTR_OPERATION_RNG_OFFSET_DESC, 2313)

#define TE_CUDNN_ATTRIBUTE_TYPE_VALUES(X)      \
  X(CUDNN_TYPE_HANDLE, 0)                      \
  X(CUDNN_TYPE_DATA_TYPE, 1)                   \
  X(CUDNN_TYPE_BOOLEAN, 2)                     \
  X(CUDNN_TYPE_INT64, 3)                       \
  X(CUDNN_TYPE_FLOAT, 4)                       \
  X(CUDNN_TYPE_VOID_PTR, 6)                    \
  X(CUDNN_TYPE_HEUR_MODE, 8)                   \
  X(CUDNN_TYPE_NUMERICAL_NOTE, 11)             \
  X(CUDNN_TYPE_POINTWISE_MODE, 14)             \
  X(CUDNN_TYPE_BACKEND_DESCRIPTOR, 15)         \
  X(CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 18)    \
  X(CUDNN_TYPE_DOUBLE, 5)                      \
  X(CUDNN_TYPE_RNG_DISTRIBUTION, 29)

#define TE_CUDNN_POINTWISE_MODE_VALUES(X) \
  X(CUDNN_POINTWISE_ADD, 0)               \
  X(CUDNN_POINTWISE_MUL, 1)               \
  X(CUDNN_POINTWISE_MAX, 3)               \
  X(CUDNN_POINTWISE_SUB, 9)               \
  X(CUDNN_POINTWISE_ABS, 10)              \
  X(CUDNN_POINTWISE_DIV, 6)               \
  X(CUDNN_POINTWISE_EXP, 13)              \
  X(CUDNN_POINTWISE_LOG, 15)              \
  X(CUDNN_POINTWISE_IDENTITY, 21)         \
  X(CUDNN_POINTWISE_CMP_GT, 302)          \
  X(CUDNN_POINTWISE_CMP_GE, 303)          \
  X(CUDNN_POINTWISE_CMP_LT, 304)          \
  X(CUDNN_POINTWISE_LOGICAL_AND, 400)     \
  X(CUDNN_POINTWISE_GEN_INDEX, 501)       \
  X(CUDNN_POINTWISE_BINARY_SELECT, 601)

#define TE_CUDNN_REDUCE_OP_VALUES(X) \
  X(CUDNN_REDUCE_TENSOR_ADD, 0)      \
  X(CUDNN_REDUCE_TENSOR_MAX, 3)      \
  X(CUDNN_REDUCE_TENSOR_AMAX, 4)

#define TE_CUDNN_HEUR_MODE_VALUES(X) \
  X(CUDNN_HEUR_MODE_FALLBACK, 2)     \
  X(CUDNN_HEUR_MODE_A, 3)

#define TE_CUDNN_NUMERICAL_NOTE_VALUES(X) X(CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC, 4)

#define TE_CUDNN_RNG_DISTRIBUTION_VALUES(X) X(CUDNN_RNG_DISTRIBUTION_BERNOULLI, 0)

#define TE_CUDNN_ENUMERATOR(name, value) name = value,
enum StatusValue : int { TE_CUDNN_STATUS_VALUES(TE_CUDNN_ENUMERATOR) };
enum DataType : int { TE_CUDNN_DATA_TYPE_VALUES(TE_CUDNN_ENUMERATOR) };
enum DescriptorType : int { TE_CUDNN_DESCRIPTOR_TYPE_VALUES(TE_CUDNN_ENUMERATOR) };
enum AttributeName : int { TE_CUDNN_ATTRIBUTE_NAME_VALUES(TE_CUDNN_ENUMERATOR) };
enum AttributeType : int { TE_CUDNN_ATTRIBUTE_TYPE_VALUES(TE_CUDNN_ENUMERATOR) };
enum PointwiseMode : int { TE_CUDNN_POINTWISE_MODE_VALUES(TE_CUDNN_ENUMERATOR) };
enum ReduceOp : int { TE_CUDNN_REDUCE_OP_VALUES(TE_CUDNN_ENUMERATOR) };
enum HeurMode : int { TE_CUDNN_HEUR_MODE_VALUES(TE_CUDNN_ENUMERATOR) };
enum NumericalNote : int { TE_CUDNN_NUMERICAL_NOTE_VALUES(TE_CUDNN_ENUMERATOR) };
enum RngDistribution : int { TE_CUDNN_RNG_DISTRIBUTION_VALUES(TE_CUDNN_ENUMERATOR) };
#undef TE_CUDNN_ENUMERATOR

// Function signatures (every enum argument is a C enum, passed as int).
using GetVersionFn = size_t (*)();
using GetErrorStringFn = const char* (*)(Status);
using GetLastErrorStringFn = void (*)(char* message, size_t max_size);  // cuDNN 9.0+
using CreateFn = Status (*)(Handle*);
using DestroyFn = Status (*)(Handle);
using SetStreamFn = Status (*)(Handle, Stream);
using BackendCreateDescriptorFn = Status (*)(int type, BackendDescriptor*);
using BackendDestroyDescriptorFn = Status (*)(BackendDescriptor);
using BackendFinalizeFn = Status (*)(BackendDescriptor);
using BackendSetAttributeFn = Status (*)(BackendDescriptor, int name, int type, int64_t count, const void* values);
using BackendGetAttributeFn = Status (*)(BackendDescriptor, int name, int type, int64_t requested, int64_t* count,
                                         void* values);
using BackendExecuteFn = Status (*)(Handle, BackendDescriptor plan, BackendDescriptor variant_pack);

}  // namespace te::cudnn::abi
