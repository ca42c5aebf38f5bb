/* Status codes and the thread-local last error of the te C API. No C++ exception ever crosses it. */
#ifndef TE_STATUS_H
#define TE_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum te_status {
  TE_OK = 0,
  /* An argument is out of range or inconsistent (te_last_error() names it). */
  TE_ERR_INVALID_ARGUMENT = 1,
  /* The backend exists but cannot run this call (te_attn_explain gives the reason). */
  TE_ERR_UNSUPPORTED = 2,
  /* No backend of that name is registered in this build. */
  TE_ERR_UNKNOWN_BACKEND = 3,
  TE_ERR_OUT_OF_MEMORY = 4,
  /* The library was built without CUDA, or no CUDA device/driver is usable. */
  TE_ERR_NO_CUDA = 5,
  /* A CUDA runtime call failed (te_last_error() has the CUDA message). */
  TE_ERR_CUDA = 6,
  TE_ERR_INTERNAL = 7
} te_status;

/* The message of the last failed call on this thread ("" when none). Valid until the next call. */
const char* te_last_error(void);

/* A stable name of a status ("TE_ERR_INVALID_ARGUMENT", ...). */
const char* te_status_name(te_status s);

#ifdef __cplusplus
}
#endif
#endif
