// The cuDNN handle and the execution plans built on it, one set per (thread, device): a handle is tied to
// the device that was current when it was made, and plans to their handle. Each family keys its plans by
// everything baked into a graph; `Extra` is what else it keeps per device (cuda.cudnn's workspace cache).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cudnn_library.h"
#include "operation_graph.h"

namespace te::cudnn {

struct NoExtra {};

template <typename Extra = NoExtra>
struct DeviceState {
  abi::Handle handle = nullptr;
  std::map<std::vector<int64_t>, std::unique_ptr<ExecutionPlan>> plans;
  Extra extra;
  ~DeviceState() {
    plans.clear();  // plans go before the handle they were built on
    std::string ignored;
    if (handle != nullptr) loadLibrary(&ignored)->destroy(handle);
  }
};

template <typename Extra>
DeviceState<Extra>& stateFor(const Library& lib, int device) {
  thread_local std::map<int, DeviceState<Extra>> states;
  DeviceState<Extra>& s = states[device];
  if (s.handle == nullptr) check(lib, lib.create(&s.handle), "cudnnCreate");
  return s;
}

// The plan cached under `key`, built by build(handle) on the first call.
template <typename Extra, typename Build>
const ExecutionPlan& planFor(DeviceState<Extra>& state, std::vector<int64_t> key, Build&& build) {
  auto it = state.plans.find(key);
  if (it != state.plans.end()) return *it->second;
  return *state.plans.emplace(std::move(key), build(state.handle)).first->second;
}

}  // namespace te::cudnn
