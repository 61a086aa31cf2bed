// Invariant checks. In a debug build (npm run test:asan builds with
// POSIX_AIO_DEBUG) every AIO_ASSERT is evaluated and a failure aborts with
// the condition and its place; in a release build they cost nothing.
#pragma once

#ifdef POSIX_AIO_DEBUG
#include <cstdio>
#include <cstdlib>
#define AIO_ASSERT(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "posix-aio: invariant failed: %s (%s:%d)\n", #cond, __FILE__, \
                   __LINE__);                                                            \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)
#define AIO_DEBUG_ONLY(x) x
#else
#define AIO_ASSERT(cond) \
  do {                   \
  } while (0)
#define AIO_DEBUG_ONLY(x)
#endif
