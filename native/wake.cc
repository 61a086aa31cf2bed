#include "wake.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>

namespace posix_aio {

namespace {

struct Anchor {
  struct aiocb cb {};
  uint64_t value = 0;
  std::atomic<int> fd{-1};
};

// Process-wide and never freed: a glibc worker reads into it for as long as
// the process lives.
Anchor* const anchor = new Anchor();

std::mutex pool_mu;
bool pool_started = false;  // guarded by pool_mu
int pool_error = 0;         // errno of a failed start, guarded by pool_mu
#ifdef __GLIBC__
// glibc's defaults (rt/aio_misc.c).
int cfg_threads = 20;
int cfg_num = 64;
int cfg_idle = 1;
#endif

}  // namespace

bool SetPoolConfig(int threads, int num, int idle_time) {
#ifdef __GLIBC__
  std::lock_guard<std::mutex> lock(pool_mu);
  if (pool_started) return false;
  cfg_threads = threads;
  cfg_num = num;
  cfg_idle = idle_time;
  return true;
#else
  (void)threads;
  (void)num;
  (void)idle_time;
  return false;
#endif
}

bool EnsurePool() {
  std::lock_guard<std::mutex> lock(pool_mu);
  if (pool_started) {
    if (pool_error == 0) return true;
    errno = pool_error;
    return false;
  }
#ifdef __GLIBC__
  struct aioinit init {};
  // One more than asked: the anchor keeps one worker for itself.
  init.aio_threads = cfg_threads + 1;
  init.aio_num = cfg_num + 1;
  init.aio_idle_time = cfg_idle;
  aio_init(&init);
#endif
  int fd = eventfd(0, EFD_CLOEXEC);
  if (fd < 0) {
    // Not started: a later call (descriptors freed) tries again.
    return false;
  }
  anchor->cb.aio_fildes = fd;
  anchor->cb.aio_buf = &anchor->value;
  anchor->cb.aio_nbytes = sizeof anchor->value;
  anchor->cb.aio_sigevent.sigev_notify = SIGEV_NONE;
  if (aio_read(&anchor->cb) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return false;
  }
  anchor->fd.store(fd, std::memory_order_release);
  pool_started = true;
  return true;
}

bool IsAnchorFd(int fd) { return fd >= 0 && fd == anchor->fd.load(std::memory_order_acquire); }

Sentinel::Sentinel() {
  cb_.aio_buf = &value_;
  cb_.aio_nbytes = sizeof value_;
  cb_.aio_sigevent.sigev_notify = SIGEV_NONE;
}

bool Sentinel::Arm() {
  cb_.aio_fildes = anchor->fd.load(std::memory_order_acquire);
  cb_.aio_reqprio = 0;
  return aio_read(&cb_) == 0;
}

void Sentinel::Fire() { aio_cancel(cb_.aio_fildes, &cb_); }

bool Sentinel::Pending() const { return aio_error(&cb_) == EINPROGRESS; }

void Sentinel::Reset() { aio_return(&cb_); }

bool Sentinel::Disarm() {
  if (aio_error(&cb_) == EINPROGRESS) aio_cancel(cb_.aio_fildes, &cb_);
  if (aio_error(&cb_) == EINPROGRESS) return false;
  aio_return(&cb_);
  return true;
}

}  // namespace posix_aio
