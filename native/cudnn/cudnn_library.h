// cuDNN loaded at run time with dlopen ("libcudnn.so.9", or $TE_CUDNN_LIBRARY), so one binary serves
// machines with and without cuDNN: a missing library is a sentence in explain(), never a load failure.
#pragma once
#include <stdexcept>
#include <string>

#include "cudnn_abi.h"

namespace te::cudnn {

struct Library {
  abi::GetVersionFn getVersion = nullptr;
  abi::GetErrorStringFn getErrorString = nullptr;
  abi::GetLastErrorStringFn getLastErrorString = nullptr;  // null before cuDNN 9
  abi::CreateFn create = nullptr;
  abi::DestroyFn destroy = nullptr;
  abi::SetStreamFn setStream = nullptr;
  abi::BackendCreateDescriptorFn createDescriptor = nullptr;
  abi::BackendDestroyDescriptorFn destroyDescriptor = nullptr;
  abi::BackendFinalizeFn finalize = nullptr;
  abi::BackendSetAttributeFn setAttribute = nullptr;
  abi::BackendGetAttributeFn getAttribute = nullptr;
  abi::BackendExecuteFn execute = nullptr;
};

// The library name tried: $TE_CUDNN_LIBRARY when set (a path or a soname), else "libcudnn.so.9".
std::string libraryName();

// Loads cuDNN once per process (thread-safe). The function table, or nullptr with `why` set.
const Library* loadLibrary(std::string* why);

// cudnnGetVersion() of the loaded library (e.g. 91900), 0 when it cannot be loaded.
int loadedVersion();

// A failed cuDNN call: the message names the call, cuDNN's status name and its last error text.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws Error for a status other than success.
void check(const Library& lib, abi::Status status, const char* what);

}  // namespace te::cudnn
