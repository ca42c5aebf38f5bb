// The device API of a build without CUDA: no devices, every device call answers TE_ERR_NO_CUDA.
#include "device_blocks.h"
#include "status_internal.h"
#include "te/te_device.h"

namespace {
te_status no_cuda() { return te::fail(TE_ERR_NO_CUDA, "this te_native build has no CUDA support (built without nvcc or with TE_NATIVE_CUDA=0)"); }
}  // namespace

extern "C" int te_cuda_compiled(void) { return 0; }
extern "C" int te_device_count(void) { return 0; }
extern "C" te_status te_device_get_info(int, te_device_info*) { return no_cuda(); }
extern "C" te_status te_device_alloc(int, size_t, void**) { return no_cuda(); }
extern "C" te_status te_device_free(int, void*) { return no_cuda(); }
extern "C" te_status te_device_memset(int, void*, int, size_t) { return no_cuda(); }
extern "C" te_status te_memcpy_h2d(int, void*, const void*, size_t) { return no_cuda(); }
extern "C" te_status te_memcpy_d2h(int, void*, const void*, size_t) { return no_cuda(); }
extern "C" te_status te_device_synchronize(int) { return no_cuda(); }
extern "C" te_status te_event_create(int, te_event** event) {
  if (event != nullptr) *event = nullptr;
  return no_cuda();
}
extern "C" te_status te_event_record(te_event*) { return no_cuda(); }
extern "C" te_status te_event_elapsed_ms(const te_event*, const te_event*, float*) { return no_cuda(); }
extern "C" te_status te_event_destroy(te_event*) { return TE_OK; }
int te::block_device(const void*) { return -1; }
