// lio_listio, aio_suspend, aio_cancel(fd, NULL) and aio_init.
#include "lio.h"

#include <cerrno>
#include <chrono>
#include <vector>

#include "addon.h"
#include "aiocb.h"
#include "engine.h"

namespace posix_aio {

namespace {

// glibc never stores -1 as a status, so a block still showing it after
// lio_listio() was never enqueued.
constexpr int kNotEnqueued = -1;
// Most aiocbs per lio_listio() or aio_suspend() call: glibc puts per-entry
// arrays on the calling thread's stack.
constexpr size_t kChunk = 1024;

void WaitAll(const std::vector<Request*>& reqs) {
  std::vector<const struct aiocb*> list;
  for (;;) {
    list.clear();
    for (Request* r : reqs) {
      if (list.size() < kChunk && aio_error(&r->cb) == EINPROGRESS) list.push_back(&r->cb);
    }
    if (list.empty()) return;
    // EINTR (a signal for this thread) just means waiting again.
    aio_suspend(list.data(), static_cast<int>(list.size()), nullptr);
  }
}

}  // namespace

// lioListio(mode, entries, slots, notify, signo, sigval): 0, or
// [errno, ...indices of entries libc did not enqueue]. Those entries are
// left completed with that errno (EAGAIN ones are the caller's to retry).
//
// Both modes submit with LIO_NOWAIT, in chunks: LIO_WAIT then waits here
// with aio_suspend(). glibc's own LIO_WAIT returns on EINTR with its
// on-stack wait entries still linked to running requests, which their
// completion would later write through; waiting here has no such hazard.
// A list-level signal goes with the last chunk, so for lists longer than
// one chunk it fires when that chunk's entries are done.
Napi::Value LioListio(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int mode = info[0].As<Napi::Number>().Int32Value();
  Napi::Array entries = info[1].As<Napi::Array>();
  Napi::Array slots = info[2].As<Napi::Array>();
  if (mode != LIO_WAIT && mode != LIO_NOWAIT) {
    Napi::Array out = Napi::Array::New(env, 1);
    out.Set(uint32_t{0}, Napi::Number::New(env, EINVAL));
    return out;
  }
  Engine* engine = GetAddonData(env)->engine.get();
  engine->Flush();
  if (!engine->EnsureReaper())
    throw Napi::Error::New(env, "posix-aio: cannot start the completion thread");
  uint32_t n = entries.Length();
  std::vector<Request*> reqs;
  std::vector<uint32_t> index;
  reqs.reserve(n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = entries.Get(i);
    if (v.IsNull() || v.IsUndefined()) continue;
    AioCbWrap* w = AioCbWrap::Unwrap(v);
    if (w == nullptr) throw Napi::TypeError::New(env, "list entries must be AioCb or null");
    Request* r = w->request();
    if (r->state == Request::State::kInProgress && !r->TryClaim()) {
      throw Napi::Error::New(env, "an AioCb in the list is already in progress");
    }
    if (r->lio_opcode == LIO_NOP) continue;
    for (Request* seen : reqs) {
      if (seen == r) throw Napi::TypeError::New(env, "the same AioCb appears twice in the list");
    }
    r->slot = slots.Get(i).As<Napi::Number>().Uint32Value();
    reqs.push_back(r);
    index.push_back(i);
  }

  struct sigevent none {};
  none.sigev_notify = SIGEV_NONE;
  struct sigevent user = none;
  if (mode == LIO_NOWAIT &&
      static_cast<Notify>(info[3].As<Napi::Number>().Int32Value()) == Notify::kSignal) {
    user.sigev_notify = SIGEV_SIGNAL;
    user.sigev_signo = info[4].As<Napi::Number>().Int32Value();
    user.sigev_value.sival_int = info[5].As<Napi::Number>().Int32Value();
  }
  // Never empty: glibc declares the list pointer non-null even for nent 0.
  std::vector<struct aiocb*> list;
  list.reserve(std::max<size_t>(1, std::min(kChunk, reqs.size())));
  std::vector<int> chunk_err(reqs.size(), 0);
  int first_err = 0;
  for (size_t at = 0; at < reqs.size() || (at == 0 && reqs.empty()); at += kChunk) {
    size_t m = std::min(kChunk, reqs.size() - at);
    list.clear();
    for (size_t i = at; i < at + m; i++) {
      Request* r = reqs[i];
      r->seq++;
      r->returned = false;
      r->ArmSigevent();
      r->cb.aio_lio_opcode = r->lio_opcode;
      r->op = r->lio_opcode == LIO_READ ? OpKind::kRead : OpKind::kWrite;
#ifdef __GLIBC__
      r->cb.__error_code = kNotEnqueued;
#endif
      list.push_back(&r->cb);
    }
    bool last = at + m >= reqs.size();
    // An empty list still goes to libc: with LIO_NOWAIT it notifies at once.
    int rc = lio_listio(LIO_NOWAIT, list.data(), static_cast<int>(m), last ? &user : &none);
    int err = rc == 0 ? 0 : errno;
    if (err != 0 && first_err == 0) first_err = err;
    for (size_t i = at; i < at + m; i++) chunk_err[i] = err;
    if (reqs.empty()) break;
  }

  std::vector<Request*> accepted;
  std::vector<uint32_t> refused;
  for (size_t i = 0; i < reqs.size(); i++) {
    Request* r = reqs[i];
#ifdef __GLIBC__
    bool enqueued = aio_error(&r->cb) != kNotEnqueued;
#else
    bool enqueued = chunk_err[i] == 0 || aio_error(&r->cb) != EAGAIN;
#endif
    if (!enqueued) {
      // Never reached libc: completed with the call's error.
      r->state = Request::State::kDone;
      r->ret = -1;
      r->err = chunk_err[i] == 0 || chunk_err[i] == EIO ? EAGAIN : chunk_err[i];
      refused.push_back(index[i]);
      continue;
    }
    r->state = Request::State::kInProgress;
    r->engine->AddLive(r);
    accepted.push_back(r);
  }

  int err = refused.empty() ? 0 : first_err == EIO ? EAGAIN : first_err;
  if (mode == LIO_WAIT) {
    WaitAll(accepted);
    bool failed = !refused.empty();
    for (Request* r : accepted) {
      r->TryClaim();
      if (r->err != 0) failed = true;
    }
    err = failed ? EIO : 0;
  } else {
    for (Request* r : accepted) {
      if (r->notify == Notify::kThread) r->engine->Watch(r);
    }
  }
  if (err == 0) return Napi::Number::New(env, 0);
  Napi::Array out = Napi::Array::New(env, refused.size() + 1);
  out.Set(uint32_t{0}, Napi::Number::New(env, err));
  for (size_t i = 0; i < refused.size(); i++) {
    out.Set(static_cast<uint32_t>(i + 1), Napi::Number::New(env, refused[i]));
  }
  return out;
}

// aioSuspend(entries, timeoutMs (< 0: none), slot): registers a wait the
// reaper answers through the dispatcher.
Napi::Value AioSuspend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array entries = info[0].As<Napi::Array>();
  double timeout = info[1].As<Napi::Number>().DoubleValue();
  Engine* engine = GetAddonData(env)->engine.get();
  engine->Flush();
  if (!engine->EnsureReaper())
    throw Napi::Error::New(env, "posix-aio: cannot start the completion thread");
  auto wait = std::make_unique<SuspendWait>();
  wait->slot = info[2].As<Napi::Number>().Uint32Value();
  for (uint32_t i = 0; i < entries.Length(); i++) {
    Napi::Value v = entries.Get(i);
    if (v.IsNull() || v.IsUndefined()) continue;
    AioCbWrap* w = AioCbWrap::Unwrap(v);
    if (w == nullptr) throw Napi::TypeError::New(env, "list entries must be AioCb or null");
    wait->list.push_back(w->request());
  }
  // Beyond about 30 years a deadline would overflow the clock: none.
  if (timeout >= 0 && timeout < 1e12) {
    wait->has_deadline = true;
    wait->deadline = std::chrono::steady_clock::now() +
                     std::chrono::microseconds(static_cast<int64_t>(timeout * 1000));
  }
  engine->AddSuspend(wait.release());
  return env.Undefined();
}

// aioCancelAll(fd): AIO_* status or -errno.
Napi::Value AioCancelAll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info[0], "fd", 0, INT32_MAX);
  GetAddonData(env)->engine->Flush();
  int rc = aio_cancel(fd, nullptr);
  if (rc < 0) return Napi::Number::New(env, -errno);
  if (rc == AIO_CANCELED) GetAddonData(env)->engine->Kick();
  return Napi::Number::New(env, rc);
}

// aioInit(threads, num, idleTime): glibc tunables; a no-op elsewhere.
Napi::Value AioInit(const Napi::CallbackInfo& info) {
#ifdef __GLIBC__
  struct aioinit init {};
  init.aio_threads = IntArg(info[0], "threads", 1, 1 << 16);
  init.aio_num = IntArg(info[1], "num", 1, 1 << 20);
  init.aio_idle_time = IntArg(info[2], "idleTime", 0, 1 << 30);
  aio_init(&init);
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

}  // namespace posix_aio
