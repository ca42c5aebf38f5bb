#include "operation_graph.h"

namespace te::cudnn {
namespace {

Dims packedStrides(const Dims& dims) {
  Dims strides(dims.size(), 1);
  for (size_t i = dims.size() - 1; i > 0; --i) strides[i - 1] = strides[i] * dims[i];
  return strides;
}

bool isNondeterministic(const Library& lib, const Descriptor& config) {
  Descriptor engine(lib, abi::CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  abi::BackendDescriptor raw = engine.raw();
  int64_t count = 0;
  check(lib, lib.getAttribute(config.raw(), abi::CUDNN_ATTR_ENGINECFG_ENGINE, abi::CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                              &count, &raw),
        "engine of a configuration");
  int notes[32];
  check(lib, lib.getAttribute(raw, abi::CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, abi::CUDNN_TYPE_NUMERICAL_NOTE, 32,
                              &count, notes),
        "numerical notes of an engine");
  for (int64_t i = 0; i < count; ++i)
    if (notes[i] == abi::CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC) return true;
  return false;
}

}  // namespace

Descriptor& OperationGraph::add(abi::DescriptorType type) { return parts_.emplace_back(lib_, type); }

const Descriptor& OperationGraph::tensor(int64_t uid, const Dims& dims, const Dims& strides, abi::DataType type,
                                         bool by_value, const Descriptor* ragged) {
  Descriptor& t = add(abi::CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  t.setDataType(abi::CUDNN_ATTR_TENSOR_DATA_TYPE, type)
      .setInt64s(abi::CUDNN_ATTR_TENSOR_DIMENSIONS, dims)
      .setInt64s(abi::CUDNN_ATTR_TENSOR_STRIDES, strides)
      .setInt64(abi::CUDNN_ATTR_TENSOR_UNIQUE_ID, uid)
      .setInt64(abi::CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, 16);
  if (by_value) t.setBool(abi::CUDNN_ATTR_TENSOR_IS_BY_VALUE, true);
  if (ragged != nullptr) t.setDescriptor(abi::CUDNN_ATTR_TENSOR_RAGGED_OFFSET_DESC, *ragged);
  return t.finalize(("tensor " + std::to_string(uid)).c_str());
}

const Descriptor& OperationGraph::virtualTensor(const Dims& dims, const Dims& strides, abi::DataType type,
                                                const Descriptor* ragged) {
  Descriptor& t = add(abi::CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  t.setDataType(abi::CUDNN_ATTR_TENSOR_DATA_TYPE, type)
      .setInt64s(abi::CUDNN_ATTR_TENSOR_DIMENSIONS, dims)
      .setInt64s(abi::CUDNN_ATTR_TENSOR_STRIDES, strides)
      .setInt64(abi::CUDNN_ATTR_TENSOR_UNIQUE_ID, next_virtual_uid_++)
      .setInt64(abi::CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, 16)
      .setBool(abi::CUDNN_ATTR_TENSOR_IS_VIRTUAL, true);
  if (ragged != nullptr) t.setDescriptor(abi::CUDNN_ATTR_TENSOR_RAGGED_OFFSET_DESC, *ragged);
  return t.finalize("virtual tensor");
}

const Descriptor& OperationGraph::virtualTensor(const Dims& dims, abi::DataType type) {
  return virtualTensor(dims, packedStrides(dims), type);
}

void OperationGraph::pointwise(abi::PointwiseMode mode, const Descriptor& x, const Descriptor* b,
                               const Descriptor* t, const Descriptor& y, abi::DataType compute, int64_t axis) {
  Descriptor& pw = add(abi::CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  pw.setEnum(abi::CUDNN_ATTR_POINTWISE_MODE, abi::CUDNN_TYPE_POINTWISE_MODE, mode)
      .setDataType(abi::CUDNN_ATTR_POINTWISE_MATH_PREC, compute);
  if (axis >= 0) pw.setInt64(abi::CUDNN_ATTR_POINTWISE_AXIS, axis);
  pw.finalize(("pointwise mode " + std::to_string(int(mode))).c_str());
  Descriptor& op = add(abi::CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
  op.setDescriptor(abi::CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw)
      .setDescriptor(abi::CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x)
      .setDescriptor(abi::CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y);
  if (b != nullptr) op.setDescriptor(abi::CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b);
  if (t != nullptr) op.setDescriptor(abi::CUDNN_ATTR_OPERATION_POINTWISE_TDESC, *t);
  op.finalize(("pointwise operation mode " + std::to_string(int(mode))).c_str());
  operations_.push_back(op.raw());
}

void OperationGraph::matmul(const Descriptor& a, const Descriptor& b, const Descriptor& c,
                            const Descriptor* m_override, const Descriptor* n_override,
                            const Descriptor* k_override) {
  Descriptor& mm = add(abi::CUDNN_BACKEND_MATMUL_DESCRIPTOR);
  mm.setDataType(abi::CUDNN_ATTR_MATMUL_COMP_TYPE, abi::CUDNN_DATA_FLOAT).finalize("matmul descriptor");
  Descriptor& op = add(abi::CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
  op.setDescriptor(abi::CUDNN_ATTR_OPERATION_MATMUL_ADESC, a)
      .setDescriptor(abi::CUDNN_ATTR_OPERATION_MATMUL_BDESC, b)
      .setDescriptor(abi::CUDNN_ATTR_OPERATION_MATMUL_CDESC, c)
      .setDescriptor(abi::CUDNN_ATTR_OPERATION_MATMUL_DESC, mm);
  if (m_override != nullptr) op.setDescriptor(abi::CUDNN_ATTR_OPERATION_MATMUL_GEMM_M_OVERRIDE_DESC, *m_override);
  if (n_override != nullptr) op.setDescriptor(abi::CUDNN_ATTR_OPERATION_MATMUL_GEMM_N_OVERRIDE_DESC, *n_override);
  if (k_override != nullptr) op.setDescriptor(abi::CUDNN_ATTR_OPERATION_MATMUL_GEMM_K_OVERRIDE_DESC, *k_override);
  op.finalize("matmul operation");
  operations_.push_back(op.raw());
}

void OperationGraph::reduction(abi::ReduceOp reduce, const Descriptor& x, const Descriptor& y) {
  Descriptor& r = add(abi::CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
  r.setDataType(abi::CUDNN_ATTR_REDUCTION_COMP_TYPE, abi::CUDNN_DATA_FLOAT)
      .setEnum(abi::CUDNN_ATTR_REDUCTION_OPERATOR, abi::CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, reduce)
      .finalize("reduction descriptor");
  Descriptor& op = add(abi::CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
  op.setDescriptor(abi::CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x)
      .setDescriptor(abi::CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y)
      .setDescriptor(abi::CUDNN_ATTR_OPERATION_REDUCTION_DESC, r)
      .finalize("reduction operation");
  operations_.push_back(op.raw());
}

void OperationGraph::reshape(const Descriptor& x, const Descriptor& y) {
  Descriptor& op = add(abi::CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR);
  op.setDescriptor(abi::CUDNN_ATTR_OPERATION_RESHAPE_XDESC, x)
      .setDescriptor(abi::CUDNN_ATTR_OPERATION_RESHAPE_YDESC, y)
      .finalize("reshape operation");
  operations_.push_back(op.raw());
}

void OperationGraph::bernoulli(double keep_probability, const Descriptor& seed, const Descriptor& offset,
                               const Descriptor& y) {
  Descriptor& rng = add(abi::CUDNN_BACKEND_RNG_DESCRIPTOR);
  rng.setEnum(abi::CUDNN_ATTR_RNG_DISTRIBUTION, abi::CUDNN_TYPE_RNG_DISTRIBUTION, abi::CUDNN_RNG_DISTRIBUTION_BERNOULLI)
      .set(abi::CUDNN_ATTR_RNG_BERNOULLI_DIST_PROBABILITY, abi::CUDNN_TYPE_DOUBLE, 1, &keep_probability)
      .finalize("rng descriptor");
  Descriptor& op = add(abi::CUDNN_BACKEND_OPERATION_RNG_DESCRIPTOR);
  op.setDescriptor(abi::CUDNN_ATTR_OPERATION_RNG_YDESC, y)
      .setDescriptor(abi::CUDNN_ATTR_OPERATION_RNG_DESC, rng)
      .setDescriptor(abi::CUDNN_ATTR_OPERATION_RNG_SEED, seed)
      .setDescriptor(abi::CUDNN_ATTR_OPERATION_RNG_OFFSET_DESC, offset)
      .finalize("rng operation");
  operations_.push_back(op.raw());
}

std::unique_ptr<ExecutionPlan> OperationGraph::build(abi::Handle handle, bool deterministic) {
  Descriptor& graph = add(abi::CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  graph.setHandle(abi::CUDNN_ATTR_OPERATIONGRAPH_HANDLE, handle)
      .set(abi::CUDNN_ATTR_OPERATIONGRAPH_OPS, abi::CUDNN_TYPE_BACKEND_DESCRIPTOR, int64_t(operations_.size()),
           operations_.data())
      .finalize("operation graph");
  std::string reasons;
  for (abi::HeurMode mode : {abi::CUDNN_HEUR_MODE_A, abi::CUDNN_HEUR_MODE_FALLBACK}) {
    Descriptor& heuristics = add(abi::CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    try {
      heuristics.setDescriptor(abi::CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph)
          .setEnum(abi::CUDNN_ATTR_ENGINEHEUR_MODE, abi::CUDNN_TYPE_HEUR_MODE, mode)
          .finalize("engine heuristics");
      int64_t count = 0;
      check(lib_, lib_.getAttribute(heuristics.raw(), abi::CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                    abi::CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr),
            "engine heuristics result count");
      std::vector<Descriptor> configs;
      std::vector<abi::BackendDescriptor> raw;
      for (int64_t i = 0; i < count; ++i) {
        configs.emplace_back(lib_, abi::CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
        raw.push_back(configs.back().raw());
      }
      check(lib_, lib_.getAttribute(heuristics.raw(), abi::CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                    abi::CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &count, raw.data()),
            "engine heuristics results");
      for (int64_t i = 0; i < count; ++i) {
        try {
          if (deterministic && isNondeterministic(lib_, configs[i])) {
            reasons += " [engine config " + std::to_string(i) + ": nondeterministic]";
            continue;
          }
          auto plan = std::make_unique<Descriptor>(lib_, abi::CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
          plan->setHandle(abi::CUDNN_ATTR_EXECUTION_PLAN_HANDLE, handle)
              .setDescriptor(abi::CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, configs[i])
              .finalize("execution plan");
          auto out = std::make_unique<ExecutionPlan>();
          check(lib_, lib_.getAttribute(plan->raw(), abi::CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                        abi::CUDNN_TYPE_INT64, 1, &count, &out->workspace_bytes),
                "plan workspace size");
          out->plan = std::move(plan);
          for (Descriptor& c : configs) out->parts.push_back(std::move(c));
          for (Descriptor& p : parts_) out->parts.push_back(std::move(p));
          parts_.clear();
          return out;
        } catch (const Error& e) {
          reasons += std::string(" [") + e.what() + "]";
        }
      }
      if (count == 0) reasons += " [heuristics mode " + std::to_string(int(mode)) + ": no engine]";
    } catch (const Error& e) {
      reasons += std::string(" [") + e.what() + "]";
    }
  }
  throw Error("cuDNN has no engine for this attention graph:" + reasons);
}

const Descriptor& maskPastLengths(OperationGraph& g, const Dims& dims, const Descriptor& s, const Descriptor* seq_q,
                                  const Descriptor* seq_kv, const Descriptor* neg_inf) {
  constexpr abi::DataType kI32 = abi::CUDNN_DATA_INT32, kBool = abi::CUDNN_DATA_BOOLEAN;
  const Descriptor& row = g.virtualTensor(dims, kI32);
  const Descriptor& col = g.virtualTensor(dims, kI32);
  g.pointwise(abi::CUDNN_POINTWISE_GEN_INDEX, s, nullptr, nullptr, row, kI32, 2);
  g.pointwise(abi::CUDNN_POINTWISE_GEN_INDEX, s, nullptr, nullptr, col, kI32, 3);
  const Descriptor& row_ok = g.virtualTensor(dims, kBool);
  const Descriptor& col_ok = g.virtualTensor(dims, kBool);
  const Descriptor& keep = g.virtualTensor(dims, kBool);
  g.pointwise(abi::CUDNN_POINTWISE_CMP_LT, row, seq_q, nullptr, row_ok, kBool);
  g.pointwise(abi::CUDNN_POINTWISE_CMP_LT, col, seq_kv, nullptr, col_ok, kBool);
  g.pointwise(abi::CUDNN_POINTWISE_LOGICAL_AND, row_ok, &col_ok, nullptr, keep, kBool);
  const Descriptor& out = g.virtualTensor(dims, abi::CUDNN_DATA_FLOAT);
  g.pointwise(abi::CUDNN_POINTWISE_BINARY_SELECT, s, neg_inf, &keep, out);
  return out;
}

}  // namespace te::cudnn
