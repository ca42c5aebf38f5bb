/*
 * Context-parallel communication over NCCL: a small C API of plain values, status codes and a
 * thread-local last-error sentence. NCCL is loaded at run time (dlopen "libnccl.so.2", or
 * $TE_NCCL_LIBRARY); without it every call returns TE_NCCL_NOT_FOUND and te_nccl_last_error() says
 * why. Compiled only when the build compiles CUDA.
 *
 * One process per GPU: rank 0 calls te_nccl_unique_id, hands the 128 bytes to the other ranks out
 * of band (the launcher passes them in an environment variable), and every rank calls
 * te_nccl_comm_create with the same id. Collectives take HOST buffers (what @te/core's Communicator
 * moves) and stage them through device memory on the communicator's own stream; each call returns
 * when its result is in host memory. Like NCCL, every rank must make the same calls in the same order.
 */
#ifndef TE_NCCL_H_
#define TE_NCCL_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum te_nccl_status {
  TE_NCCL_OK = 0,
  /* libnccl could not be loaded, or lacks a function this API needs. */
  TE_NCCL_NOT_FOUND = 1,
  TE_NCCL_INVALID_ARGUMENT = 2,
  /* A CUDA runtime call failed (no device, out of memory, ...). */
  TE_NCCL_CUDA_ERROR = 3,
  /* NCCL returned an error; the message carries ncclGetErrorString's text. */
  TE_NCCL_LIBRARY_ERROR = 4
} te_nccl_status;

#define TE_NCCL_UNIQUE_ID_BYTES 128

/* Element types of the reductions. */
typedef enum te_nccl_float { TE_NCCL_FLOAT32 = 0, TE_NCCL_FLOAT64 = 1 } te_nccl_float;

typedef struct te_nccl_comm te_nccl_comm;

typedef struct te_nccl_comm_params {
  int nranks;
  int rank;
  /* CUDA device ordinal this rank uses. */
  int device;
  /* TE_NCCL_UNIQUE_ID_BYTES bytes from te_nccl_unique_id on one rank. */
  const uint8_t* unique_id;
} te_nccl_comm_params;

/* The sentence describing the last failure on this thread ("" after success). */
const char* te_nccl_last_error(void);

/* Loads NCCL (once per process) and reports whether it is usable; *version gets NCCL's version
 * code (e.g. 22304 for 2.23.4) when version is not NULL. */
te_nccl_status te_nccl_load(int* version);

te_nccl_status te_nccl_unique_id(uint8_t id[TE_NCCL_UNIQUE_ID_BYTES]);

/* Joins the group (blocks until every rank has joined, as ncclCommInitRank does). */
te_nccl_status te_nccl_comm_create(const te_nccl_comm_params* params, te_nccl_comm** out);
void te_nccl_comm_destroy(te_nccl_comm* comm);

/* Sends `bytes` bytes of `send` to rank `to` and receives `bytes` bytes from rank `from` into `recv`. */
te_nccl_status te_nccl_send_recv(te_nccl_comm* comm, const void* send, void* recv, size_t bytes, int to, int from);

/* recv gets nranks * bytes_per_rank bytes: rank r's `send` at offset r * bytes_per_rank. */
te_nccl_status te_nccl_all_gather(te_nccl_comm* comm, const void* send, void* recv, size_t bytes_per_rank);

/* send holds send_bytes[r] bytes for each rank r, back to back in rank order; recv gets recv_bytes[r]
 * bytes from each rank r, back to back in rank order. */
te_nccl_status te_nccl_all_to_all(te_nccl_comm* comm, const void* send, const size_t* send_bytes, void* recv,
                                  const size_t* recv_bytes);

/* recv[i] = sum over ranks of send[i], `count` elements. */
te_nccl_status te_nccl_all_reduce_sum(te_nccl_comm* comm, const void* send, void* recv, size_t count,
                                      te_nccl_float type);

/* send holds nranks * recv_count elements; rank r gets the sum over ranks of slice r. */
te_nccl_status te_nccl_reduce_scatter_sum(te_nccl_comm* comm, const void* send, void* recv, size_t recv_count,
                                          te_nccl_float type);

#ifdef __cplusplus
}
#endif

#endif /* TE_NCCL_H_ */
