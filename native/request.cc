#include "request.h"

#include <cerrno>

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
  delete this;
}

}  // namespace posix_aio
