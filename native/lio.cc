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

void WaitAll(const std::vector<Request*>& reqs) {
  std::vector<const struct aiocb*> list;
  for (;;) {
    list.clear();
    for (Request* r : reqs) {
      if (aio_error(&r->cb) == EINPROGRESS) list.push_back(&r->cb);
    }
    if (list.empty()) return;
    // EINTR (a signal for this thread) just means waiting again.
    aio_suspend(list.data(), static_cast<int>(list.size()), nullptr);
  }
}

}  // namespace

// lioListio(mode, entries, slots, notify, signo, sigval): 0, or
// [errno, ...indices of entries libc did not enqueue].
Napi::Value LioListio(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int mode = info[0].As<Napi::Number>().Int32Value();
  Napi::Array entries = info[1].As<Napi::Array>();
  Napi::Array slots = info[2].As<Napi::Array>();
  GetAddonData(env)->engine->Flush();
  uint32_t n = entries.Length();
  std::vector<struct aiocb*> list(n, nullptr);
  std::vector<Request*> reqs(n, nullptr);
  std::vector<int> before(n, 0);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = entries.Get(i);
    if (v.IsNull() || v.IsUndefined()) continue;
    AioCbWrap* w = AioCbWrap::Unwrap(v);
    if (w == nullptr) throw Napi::TypeError::New(env, "list entries must be AioCb or null");
    Request* r = w->request();
    if (r->state == Request::State::kInProgress && !r->TryClaim()) {
      throw Napi::Error::New(env, "an AioCb in the list is already in progress");
    }
    r->cb.aio_lio_opcode = r->lio_opcode;
    if (r->lio_opcode == LIO_NOP) continue;
    r->slot = slots.Get(i).As<Napi::Number>().Uint32Value();
    reqs[i] = r;
    list[i] = &r->cb;
  }
  for (uint32_t i = 0; i < n; i++) {
    Request* r = reqs[i];
    if (r == nullptr) continue;
    r->seq++;
    r->returned = false;
    r->ArmSigevent();
#ifdef __GLIBC__
    before[i] = r->cb.__error_code;
    r->cb.__error_code = kNotEnqueued;
#endif
  }
  struct sigevent sev {};
  sev.sigev_notify = SIGEV_NONE;
  if (static_cast<Notify>(info[3].As<Napi::Number>().Int32Value()) == Notify::kSignal) {
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = info[4].As<Napi::Number>().Int32Value();
    sev.sigev_value.sival_int = info[5].As<Napi::Number>().Int32Value();
  }
  int rc = lio_listio(mode, list.data(), static_cast<int>(n), &sev);
  int err = rc == 0 ? 0 : errno;

  std::vector<Request*> accepted;
  std::vector<uint32_t> refused;
  for (uint32_t i = 0; i < n; i++) {
    Request* r = reqs[i];
    if (r == nullptr) continue;
    int st = aio_error(&r->cb);
    bool enqueued = st != kNotEnqueued;
#ifndef __GLIBC__
    enqueued = rc == 0 || st != EAGAIN;
#endif
    if (!enqueued) {
#ifdef __GLIBC__
      r->cb.__error_code = before[i];
#endif
      refused.push_back(i);
      continue;
    }
    r->state = Request::State::kInProgress;
    r->engine->AddLive(r);
    accepted.push_back(r);
  }

  if (mode == LIO_WAIT) {
    // glibc returns EINTR when a signal cuts the wait short while entries
    // still run; finish waiting here so the contract "returns after every
    // entry completed" holds either way.
    WaitAll(accepted);
    bool failed = false;
    for (Request* r : accepted) {
      r->TryClaim();
      if (r->err != 0) failed = true;
    }
    if (err == EINTR || err == EIO) err = failed ? EIO : 0;
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
  GetAddonData(env)->engine->Flush();
  auto wait = std::make_unique<SuspendWait>();
  wait->slot = info[2].As<Napi::Number>().Uint32Value();
  for (uint32_t i = 0; i < entries.Length(); i++) {
    Napi::Value v = entries.Get(i);
    if (v.IsNull() || v.IsUndefined()) continue;
    AioCbWrap* w = AioCbWrap::Unwrap(v);
    if (w == nullptr) throw Napi::TypeError::New(env, "list entries must be AioCb or null");
    wait->list.push_back(w->request());
  }
  if (timeout >= 0) {
    wait->has_deadline = true;
    wait->deadline = std::chrono::steady_clock::now() +
                     std::chrono::microseconds(static_cast<int64_t>(timeout * 1000));
  }
  GetAddonData(env)->engine->AddSuspend(wait.release());
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
