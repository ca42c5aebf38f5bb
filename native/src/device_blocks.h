// The live allocations of te_device_alloc and their devices, for the CUDA families' pointer checks: a
// pointer inside a live block is device memory of that block's device, known without asking the driver
// (cudaPointerGetAttributes costs about a microsecond per pointer, and a call has 5-13 of them).
#pragma once

namespace te {
// The device of the live te_device_alloc block that holds p, or -1 when none does (not a te allocation,
// freed, or a build without CUDA). Weak, so that drivers which link a family without the device API
// (native/cudnn/tests) still link; callers then ask the driver (null check before the call).
int block_device(const void* p) __attribute__((weak));
}  // namespace te
