// A cuDNN operation graph under construction: tensors (by unique id), the operations between them
// (pointwise, matmul, reduction, reshape), and the step to an execution plan chosen by cuDNN's
// heuristics. Descriptors live in deques so that references handed out stay valid; the finished
// ExecutionPlan keeps every descriptor it was built from.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "backend_descriptor.h"

namespace te::cudnn {

using Dims = std::vector<int64_t>;

struct ExecutionPlan {
  std::deque<Descriptor> parts;  // tensors, operations, graph, heuristics, configs
  std::unique_ptr<Descriptor> plan;
  int64_t workspace_bytes = 0;
};

class OperationGraph {
 public:
  explicit OperationGraph(const Library& lib) : lib_(lib) {}

  // A tensor in device memory (or a host scalar when by_value) that the variant pack names by uid.
  // `ragged`: an int64 [b + 1] tensor of element offsets where each batch entry starts (thd).
  const Descriptor& tensor(int64_t uid, const Dims& dims, const Dims& strides, abi::DataType type,
                           bool by_value = false, const Descriptor* ragged = nullptr);
  // An intermediate that never reaches memory.
  const Descriptor& virtualTensor(const Dims& dims, const Dims& strides, abi::DataType type,
                                  const Descriptor* ragged = nullptr);
  const Descriptor& virtualTensor(const Dims& dims, abi::DataType type);  // packed strides

  // y = mode(x[, b[, t]]) computed in `compute`; axis only for GEN_INDEX.
  void pointwise(abi::PointwiseMode mode, const Descriptor& x, const Descriptor* b, const Descriptor* t,
                 const Descriptor& y, abi::DataType compute = abi::CUDNN_DATA_FLOAT, int64_t axis = -1);
  // c = a @ b over the last two dims; the overrides are per-batch [b,1,1,1] int32 lengths of m, n, k.
  void matmul(const Descriptor& a, const Descriptor& b, const Descriptor& c, const Descriptor* m_override,
              const Descriptor* n_override, const Descriptor* k_override);
  void reduction(abi::ReduceOp op, const Descriptor& x, const Descriptor& y);
  void reshape(const Descriptor& x, const Descriptor& y);
  // y = Bernoulli(keep_probability) draws of cuDNN's Philox generator, from int64 [1,1,1,1] seed and offset
  // tensors: the same seed, offset and y shape give the same draws in every graph.
  void bernoulli(double keep_probability, const Descriptor& seed, const Descriptor& offset, const Descriptor& y);

  // Finalizes the graph on `handle` and returns the first engine configuration of heuristics mode A
  // (then the fallback list) that finalizes as a plan; nondeterministic engines are skipped when
  // `deterministic`. Throws Error with cuDNN's reasons when none does.
  std::unique_ptr<ExecutionPlan> build(abi::Handle handle, bool deterministic);

 private:
  Descriptor& add(abi::DescriptorType type);

  const Library& lib_;
  std::deque<Descriptor> parts_;
  std::vector<abi::BackendDescriptor> operations_;
  int64_t next_virtual_uid_ = 1000;
};

// s [b, h, sq, skv] with the logits past an entry's lengths set to -inf: rows i >= seq_q[b] and columns
// j >= seq_kv[b] (int32 [b, 1, 1, 1] tensors); neg_inf is the fp32 scalar that replaces them.
const Descriptor& maskPastLengths(OperationGraph& g, const Dims& dims, const Descriptor& s, const Descriptor* seq_q,
                                  const Descriptor* seq_kv, const Descriptor* neg_inf);

}  // namespace te::cudnn
