// One cuDNN backend descriptor owned by RAII: created on construction, destroyed with the object,
// with typed setters; every failure throws te::cudnn::Error naming the attribute.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cudnn_library.h"

namespace te::cudnn {

class Descriptor {
 public:
  Descriptor(const Library& lib, abi::DescriptorType type) : lib_(&lib) {
    check(lib, lib.createDescriptor(type, &raw_), ("create descriptor type " + std::to_string(int(type))).c_str());
  }
  ~Descriptor() {
    if (raw_ != nullptr) lib_->destroyDescriptor(raw_);
  }
  Descriptor(Descriptor&& other) noexcept : lib_(other.lib_), raw_(std::exchange(other.raw_, nullptr)) {}
  Descriptor& operator=(Descriptor&& other) noexcept {
    std::swap(lib_, other.lib_);
    std::swap(raw_, other.raw_);
    return *this;
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;

  abi::BackendDescriptor raw() const { return raw_; }

  Descriptor& set(abi::AttributeName name, abi::AttributeType type, int64_t count, const void* values) {
    check(*lib_, lib_->setAttribute(raw_, name, type, count, values),
          ("set attribute " + std::to_string(int(name))).c_str());
    return *this;
  }
  Descriptor& setInt64(abi::AttributeName name, int64_t v) { return set(name, abi::CUDNN_TYPE_INT64, 1, &v); }
  Descriptor& setInt64s(abi::AttributeName name, const std::vector<int64_t>& v) {
    return set(name, abi::CUDNN_TYPE_INT64, int64_t(v.size()), v.data());
  }
  Descriptor& setBool(abi::AttributeName name, bool v) { return set(name, abi::CUDNN_TYPE_BOOLEAN, 1, &v); }
  Descriptor& setDataType(abi::AttributeName name, abi::DataType v) {
    const int value = v;
    return set(name, abi::CUDNN_TYPE_DATA_TYPE, 1, &value);
  }
  Descriptor& setEnum(abi::AttributeName name, abi::AttributeType type, int v) { return set(name, type, 1, &v); }
  Descriptor& setDescriptor(abi::AttributeName name, const Descriptor& d) {
    abi::BackendDescriptor raw = d.raw();
    return set(name, abi::CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &raw);
  }
  Descriptor& setHandle(abi::AttributeName name, abi::Handle h) { return set(name, abi::CUDNN_TYPE_HANDLE, 1, &h); }
  Descriptor& finalize(const char* what) {
    check(*lib_, lib_->finalize(raw_), what);
    return *this;
  }

 private:
  const Library* lib_;
  abi::BackendDescriptor raw_ = nullptr;
};

}  // namespace te::cudnn
