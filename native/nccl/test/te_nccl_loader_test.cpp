// Checks how te_nccl reports NCCL's presence. One scenario per process (the library is loaded once
// per process), chosen by argv[1]; TE_NCCL_LIBRARY points at the library of the scenario.
//   missing         : no library at that path -> TE_NCCL_NOT_FOUND naming it
//   incomplete      : a library without ncclReduceScatter -> TE_NCCL_NOT_FOUND naming the symbol
//   present         : the fake library -> version and unique id come through; a communicator
//                     cannot be made (no GPU: CUDA error; with a GPU: the fake's NCCL error)
#include <cstdio>
#include <cstring>
#include <string>

#include "../te_nccl.h"

namespace {
int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) failures++;
}

bool mentions(const char* text, const char* part) { return std::strstr(text, part) != nullptr; }
}  // namespace

int main(int argc, char** argv) {
  const std::string scenario = argc > 1 ? argv[1] : "";
  int version = 0;
  te_nccl_status loaded = te_nccl_load(&version);
  const std::string why = te_nccl_last_error();
  if (scenario == "missing") {
    check(loaded == TE_NCCL_NOT_FOUND, "a missing library is TE_NCCL_NOT_FOUND");
    check(mentions(why.c_str(), "NCCL not found") && mentions(why.c_str(), "no-such-libnccl.so.2"),
          "the message names the library: " + why);
    uint8_t id[TE_NCCL_UNIQUE_ID_BYTES];
    check(te_nccl_unique_id(id) == TE_NCCL_NOT_FOUND, "te_nccl_unique_id reports it too");
  } else if (scenario == "incomplete") {
    check(loaded == TE_NCCL_NOT_FOUND, "a library lacking a function is TE_NCCL_NOT_FOUND");
    check(mentions(why.c_str(), "ncclReduceScatter"), "the message names the function: " + why);
  } else if (scenario == "present") {
    check(loaded == TE_NCCL_OK && version == 22304, "the version comes through: " + std::to_string(version));
    uint8_t id[TE_NCCL_UNIQUE_ID_BYTES] = {};
    check(te_nccl_unique_id(id) == TE_NCCL_OK && id[5] == 5 && id[127] == 127, "the unique id comes through");
    te_nccl_comm* comm = nullptr;
    te_nccl_comm_params bad = {2, 2, 0, id};
    const te_nccl_status refused = te_nccl_comm_create(&bad, &comm);
    const std::string refusal = te_nccl_last_error();
    check(refused == TE_NCCL_INVALID_ARGUMENT && mentions(refusal.c_str(), "rank"),
          "a rank outside the group is an invalid argument: " + refusal);
    te_nccl_comm_params params = {1, 0, 0, id};
    te_nccl_status made = te_nccl_comm_create(&params, &comm);
    const std::string message = te_nccl_last_error();
    check((made == TE_NCCL_CUDA_ERROR && mentions(message.c_str(), "cudaSetDevice")) ||
              (made == TE_NCCL_LIBRARY_ERROR && mentions(message.c_str(), "fake NCCL")),
          "no communicator from the fake library, with a reason: " + message);
    check(comm == nullptr, "no communicator is returned on failure");
    check(te_nccl_send_recv(nullptr, id, id, 1, 0, 0) == TE_NCCL_INVALID_ARGUMENT, "a NULL communicator is refused");
  } else {
    std::printf("usage: te_nccl_loader_test missing|incomplete|present\n");
    return 2;
  }
  return failures == 0 ? 0 : 1;
}
