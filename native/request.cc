#include "request.h"

#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "engine.h"

namespace posix_aio {

void Request::ArmSigevent() {
  cb.aio_reqprio = prio;
  cb.aio_sigevent = {};
  if (notify == Notify::kSignal) {
    cb.aio_sigevent.sigev_notify = SIGEV_SIGNAL;
    cb.aio_sigevent.sigev_signo = signo;
    cb.aio_sigevent.sigev_value.sival_int = sigval;
  } else {
    cb.aio_sigevent.sigev_notify = SIGEV_NONE;
  }
}

void Request::UseBounce(bool write) {
  // Called once per submission, after the previous one was claimed.
  AIO_ASSERT(bounce == nullptr);
  if (bounce != nullptr || cb.aio_nbytes == 0) return;
  int fd = cb.aio_fildes;
  if (kind_fd != fd) {
    // Regular files and block devices complete in bounded time; the rest
    // may wait for a peer for ever. Found once per descriptor and block
    // (a block reused after its descriptor number was closed and reopened
    // as another kind of file keeps the first answer); a failed fstat() is
    // not remembered.
    struct stat st;
    if (fstat(fd, &st) != 0) return;
    may_block = !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode);
    kind_fd = fd;
  }
  if (!may_block) return;
  void* copy = std::malloc(cb.aio_nbytes);
  if (copy == nullptr) return;
  user_buf = const_cast<void*>(cb.aio_buf);
  if (write) std::memcpy(copy, user_buf, cb.aio_nbytes);
  bounce = copy;
  cb.aio_buf = copy;
}

void Request::EndBounce() {
  if (bounce == nullptr) return;
  // The final status was read before: the bytes libc wrote are visible.
  std::atomic_thread_fence(std::memory_order_acquire);
  if (op == OpKind::kRead && err == 0 && ret > 0) {
    std::memcpy(user_buf, bounce, static_cast<size_t>(ret));
  }
  cb.aio_buf = user_buf;
  std::free(bounce);
  bounce = nullptr;
  user_buf = nullptr;
}

bool Request::TryClaim() {
  if (state != State::kInProgress) return false;
  AIO_ASSERT(on_live && refs >= 1);
  // A deferred request has no libc status until the batch is submitted.
  engine->Flush();
  int e = aio_error(&cb);
  if (e == EINPROGRESS) return false;
  ret = aio_return(&cb);
  err = e;
  state = State::kDone;
  returned = false;
  EndBounce();
  // Last: this may free the request.
  engine->RemoveLive(this);
  return true;
}

void Request::Unref() {
  AIO_ASSERT(refs >= 1);
  if (--refs > 0) return;
  // Nobody holds a count, so libc cannot hold the aiocb (the live list would).
  AIO_ASSERT(!on_live && state != State::kInProgress);
  AIO_ASSERT(!wrapped);
  if (seq != 0) {
    // glibc stores a request's status, then (still under its lock) reads
    // aio_sigevent to notify and unlinks the request: a status seen from
    // here may precede that. aio_suspend() takes the same lock, so once it
    // returns the worker is done with the block.
    const struct aiocb* list[1] = {&cb};
    struct timespec zero {};
    aio_suspend(list, 1, &zero);
  }
  if (buffer_ref != nullptr) {
    napi_delete_reference(env, buffer_ref);
    buffer_ref = nullptr;
  }
  std::free(bounce);
  delete this;
}

}  // namespace posix_aio
