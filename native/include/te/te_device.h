/* CUDA devices and memory through the te C API. Without CUDA in the build (or without a driver/GPU at
 * run time) te_device_count returns 0 and the rest return TE_ERR_NO_CUDA. */
#ifndef TE_DEVICE_H
#define TE_DEVICE_H

#include <stddef.h>
#include <stdint.h>
#include "te_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct te_device_info {
  char name[256];
  int32_t arch;          /* major * 10 + minor */
  uint64_t total_memory; /* bytes */
  uint64_t free_memory; /* the driver's view: blocks cached in te's pool for reuse count as used */
} te_device_info;

/* 1 when the library was compiled with CUDA kernels. */
int te_cuda_compiled(void);
int te_device_count(void);
te_status te_device_get_info(int device, te_device_info* info);
/* Allocation is stream-ordered on the legacy default stream (the stream the families run on when the
 * argument block names none) from the device's default memory pool, whose release threshold is raised
 * so freed blocks are kept and reused instead of returned to the driver. te_device_free is ordered
 * after all work queued before it; out of memory is TE_ERR_OUT_OF_MEMORY naming the bytes asked for
 * and the free memory, after the pool's cached blocks were released and the allocation retried once. */
te_status te_device_alloc(int device, size_t bytes, void** ptr);
te_status te_device_free(int device, void* ptr);
/* Sets `bytes` bytes at ptr to `value` (the low 8 bits), ordered on the same stream as allocation. */
te_status te_device_memset(int device, void* ptr, int value, size_t bytes);
te_status te_memcpy_h2d(int device, void* dst, const void* src, size_t bytes);
te_status te_memcpy_d2h(int device, void* dst, const void* src, size_t bytes);
/* Waits until every piece of work queued on the device has finished. */
te_status te_device_synchronize(int device);

/* Timing events on the device's legacy default stream, the stream of allocation and of the families when
 * the argument block names none: record one before and one after some work; once that work has
 * finished (te_device_synchronize), te_event_elapsed_ms gives the device time between them in ms (an
 * event not recorded, not finished, or of another device is TE_ERR_INVALID_ARGUMENT). */
typedef struct te_event te_event;
te_status te_event_create(int device, te_event** event);
te_status te_event_record(te_event* event);
te_status te_event_elapsed_ms(const te_event* start, const te_event* end, float* ms);
te_status te_event_destroy(te_event* event);

#ifdef __cplusplus
}
#endif
#endif
