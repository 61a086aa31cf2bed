// lio_listio, aio_suspend, aio_cancel(fd, NULL) and aio_init.
#include "lio.h"

#include <cerrno>
#include <chrono>
#include <vector>

#include "addon.h"
#include "aiocb.h"
#include "engine.h"
#include "signals.h"
#include "wake.h"

namespace posix_aio {

namespace {

#ifdef __GLIBC__
// glibc stores EINPROGRESS in every entry it enqueues, under its lock,
// before lio_listio() returns, and never stores -1 as a status: a block
// still showing -1 afterwards was never enqueued.
constexpr int kNotEnqueued = -1;
// Most aiocbs per lio_listio() call: glibc puts per-entry arrays on the
// calling thread's stack.
constexpr size_t kChunk = 1024;
#endif

// The kind of the last descriptor seen in one call (Request::UseBounce):
// one fstat() per descriptor and call, not per entry.
struct KindCache {
  int fd = -1;
  bool may_block = false;
};

void Prepare(Request* r, KindCache& kind) {
  r->seq++;
  r->returned = false;
  r->ArmSigevent();
  r->cb.aio_lio_opcode = r->lio_opcode;
  r->op = r->lio_opcode == LIO_READ ? OpKind::kRead : OpKind::kWrite;
  if (kind.fd >= 0 && r->cb.aio_fildes == kind.fd) {
    r->kind_fd = kind.fd;
    r->may_block = kind.may_block;
  }
  r->UseBounce(r->op == OpKind::kWrite);
  if (r->kind_fd == r->cb.aio_fildes) {
    kind.fd = r->kind_fd;
    kind.may_block = r->may_block;
  }
}

// Submits reqs; sets enqueued[i] exactly for each entry libc accepted or
// the engine holds (Engine::AddHeld: its descriptor's window is full) and
// returns the first error (0 when all were). Every accepted entry ends in
// progress on the live list. On glibc: lio_listio() in chunks with the
// not-enqueued marker. Elsewhere no libc's partial-failure state is trusted
// (musl's lio_listio stops at the first refusal and leaves the later
// entries' status untouched, possibly a previous use's result): each entry
// goes in with its own aio_read()/aio_write(), whose return value says
// exactly whether it was taken.
int SubmitAll(Engine* engine, const std::vector<Request*>& reqs, struct sigevent& user,
              std::vector<char>& enqueued) {
  enqueued.assign(reqs.size(), 0);
  int first_err = 0;
#ifdef __GLIBC__
  // A list-level signal must cover the entries: that list is never held.
  bool bypass = user.sigev_notify != SIGEV_NONE;
  std::vector<size_t> to_libc;
  to_libc.reserve(reqs.size());
  KindCache kind;
  for (size_t i = 0; i < reqs.size(); i++) {
    Request* r = reqs[i];
    Prepare(r, kind);
    r->state = Request::State::kInProgress;
    if (engine->MustHold(r->cb.aio_fildes, bypass)) {
      engine->AddHeld(r);
      enqueued[i] = 1;
      continue;
    }
    // On the live list before libc has it, so that the window counts it;
    // nothing looks at it before the call below.
    engine->AddLive(r);
    to_libc.push_back(i);
  }
  struct sigevent none {};
  none.sigev_notify = SIGEV_NONE;
  // Never empty: glibc declares the list pointer non-null even for nent 0.
  std::vector<struct aiocb*> list;
  list.reserve(std::max<size_t>(1, std::min(kChunk, to_libc.size())));
  for (size_t at = 0; at < to_libc.size() || (at == 0 && to_libc.empty()); at += kChunk) {
    size_t m = std::min(kChunk, to_libc.size() - at);
    list.clear();
    for (size_t k = at; k < at + m; k++) {
      Request* r = reqs[to_libc[k]];
      r->cb.__error_code = kNotEnqueued;
      list.push_back(&r->cb);
    }
    bool last = at + m >= to_libc.size();
    // An empty list still goes to libc: with LIO_NOWAIT it notifies at once.
    int rc = lio_listio(LIO_NOWAIT, list.data(), static_cast<int>(m), last ? &user : &none);
    int err = rc == 0 ? 0 : errno;
    for (size_t k = at; k < at + m; k++) {
      size_t i = to_libc[k];
      Request* r = reqs[i];
      enqueued[i] = __atomic_load_n(&r->cb.__error_code, __ATOMIC_ACQUIRE) != kNotEnqueued;
      if (enqueued[i]) continue;
      if (first_err == 0) first_err = err == 0 || err == EIO ? EAGAIN : err;
      // Never reached libc: off the live list again.
      r->state = Request::State::kDone;
      r->err = EAGAIN;
      r->EndBounce();
      engine->RemoveLive(r);
    }
    if (to_libc.empty()) break;
  }
#else
  (void)user;
  KindCache kind;
  for (size_t i = 0; i < reqs.size(); i++) {
    Request* r = reqs[i];
    Prepare(r, kind);
    int rc = r->lio_opcode == LIO_READ ? aio_read(&r->cb) : aio_write(&r->cb);
    enqueued[i] = rc == 0;
    if (rc != 0) {
      if (first_err == 0) first_err = errno;
      r->err = errno;
      r->EndBounce();
      continue;
    }
    r->state = Request::State::kInProgress;
    engine->AddLive(r);
  }
#endif
  return first_err;
}

}  // namespace

// lioListio(mode, ids, slots, notify, signo, sigval, promises): the promise
// of each entry's operation is made here and stored at its index in
// `promises` (a JavaScript promise with its resolving functions costs about
// five times the young-generation memory, all of it copied by the GC while
// a list of 100k entries is being made); AioCbWrap::Settle settles it.
// Returns 0; [errno,
// ...indices of entries libc did not enqueue] (those are left completed
// with that errno; EAGAIN ones are the caller's to retry); or -errno when
// the call failed as a whole and every entry was left as it was.
//
// Both modes submit with LIO_NOWAIT, in chunks: LIO_WAIT then waits here
// with aio_suspend(). glibc's own LIO_WAIT returns on EINTR with its
// on-stack wait entries still linked to running requests, which their
// completion would later write through; waiting here has no such hazard.
// A list-level signal goes with the last chunk, so for lists longer than
// one chunk it fires when that chunk's entries are done. Off glibc a
// list-level signal is refused (ENOSYS): entries are submitted one by one.
Napi::Value LioListio(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int mode = info[0].As<Napi::Number>().Int32Value();
  // Ids (AioCbWrap::Id, 0 for none) and registry slots, one per entry:
  // typed arrays, so a list of 100k entries costs no call into V8 per entry.
  if (!info[1].IsTypedArray() || !info[2].IsTypedArray()) {
    throw Napi::TypeError::New(env, "lioListio: ids and slots must be Uint32Arrays");
  }
  auto ids = info[1].As<Napi::Uint32Array>();
  auto slots = info[2].As<Napi::Uint32Array>();
  if (ids.TypedArrayType() != napi_uint32_array || slots.TypedArrayType() != napi_uint32_array ||
      slots.ElementLength() != ids.ElementLength()) {
    throw Napi::TypeError::New(env, "lioListio: ids and slots must be Uint32Arrays of one length");
  }
  if (mode != LIO_WAIT && mode != LIO_NOWAIT) {
    Napi::Array out = Napi::Array::New(env, 1);
    out.Set(uint32_t{0}, Napi::Number::New(env, EINVAL));
    return out;
  }
  Engine* engine = GetAddonData(env)->engine.get();
  engine->Flush();

  // 1. Check everything before touching any entry: a throw or a refusal
  //    here leaves every block as it was. Duplicates are found in one pass
  //    with a mark per call.
  size_t n = ids.ElementLength();
  std::vector<Request*> reqs;
  std::vector<uint32_t> index;
  reqs.reserve(n);
  uint64_t mark = engine->NextMark();
  for (uint32_t i = 0; i < n; i++) {
    if (ids[i] == 0) continue;
    Request* r = engine->Lookup(ids[i]);
    if (r == nullptr) throw Napi::TypeError::New(env, "list entries must be AioCb or null");
    if (r->state == Request::State::kInProgress && !r->TryClaim()) {
      throw Napi::Error::New(env, "an AioCb in the list is already in progress");
    }
    if (r->lio_opcode == LIO_NOP) continue;
    if (r->mark == mark)
      throw Napi::TypeError::New(env, "the same AioCb appears twice in the list");
    r->mark = mark;
    if (r->notify == Notify::kSignal &&
        (!SignalUsable(r->signo) || !engine->KeepSignalHandled(r->signo))) {
      return Napi::Number::New(env, -EINVAL);
    }
    reqs.push_back(r);
    index.push_back(i);
  }

  struct sigevent none {};
  none.sigev_notify = SIGEV_NONE;
  struct sigevent user = none;
  if (mode == LIO_NOWAIT &&
      static_cast<Notify>(info[3].As<Napi::Number>().Int32Value()) == Notify::kSignal) {
    int signo = info[4].As<Napi::Number>().Int32Value();
    if (!SignalUsable(signo) || !engine->KeepSignalHandled(signo)) {
      return Napi::Number::New(env, -EINVAL);
    }
    if (!Engine::CanDefer()) return Napi::Number::New(env, -ENOSYS);
    user.sigev_notify = SIGEV_SIGNAL;
    user.sigev_signo = signo;
    user.sigev_value.sival_int = info[5].As<Napi::Number>().Int32Value();
  }
  if (!engine->EnsureReaper()) return Napi::Number::New(env, -(errno != 0 ? errno : EAGAIN));
  // A list with a list-level signal is never held (its signal must cover
  // its entries), so on a descriptor that already holds requests it would
  // overtake them: refused as a whole, like any lack of resources.
  if (user.sigev_notify != SIGEV_NONE) {
    for (Request* r : reqs) {
      if (engine->Holding(r->cb.aio_fildes)) return Napi::Number::New(env, -EAGAIN);
    }
  }

  // 2. Submit. From here every entry is either in libc or completed with
  //    the error that kept it out.
  for (size_t i = 0; i < reqs.size(); i++) reqs[i]->slot = slots[index[i]];
  std::vector<char> enqueued;
  int first_err = SubmitAll(engine, reqs, user, enqueued);

  // 3. From here the call has succeeded: the promises JavaScript returns.
  if (info[6].IsArray()) {
    napi_value promises = info[6];
    for (size_t i = 0; i < reqs.size(); i++) {
      Request* r = reqs[i];
      AIO_ASSERT(r->deferred == nullptr);
      napi_value p;
      // The entries are in libc: there is no way back to "as before" here.
      // These fail when JavaScript can no longer run (a Worker being
      // terminated): nobody will see the promises; the engine still owns
      // the requests (live list) and its teardown deals with them.
      if (napi_create_promise(env, &r->deferred, &p) != napi_ok) {
        r->deferred = nullptr;
        return env.Undefined();
      }
      if (napi_set_element(env, promises, index[i], p) != napi_ok) return env.Undefined();
    }
  }

  std::vector<Request*> accepted;
  std::vector<uint32_t> refused;
  bool held = false;
  for (size_t i = 0; i < reqs.size(); i++) {
    Request* r = reqs[i];
    if (!enqueued[i]) {
      // Never reached libc: completed with the call's error.
      r->state = Request::State::kDone;
      r->ret = -1;
      r->err = first_err != 0 ? first_err : EAGAIN;
      refused.push_back(index[i]);
      continue;
    }
    held |= r->held.load(std::memory_order_relaxed);
    accepted.push_back(r);
  }

  int err = refused.empty() ? 0 : first_err;
  if (mode == LIO_WAIT) {
    engine->WaitAll(accepted);
    bool failed = !refused.empty();
    for (Request* r : accepted) {
      r->TryClaim();
      if (r->err != 0) failed = true;
    }
    err = failed ? EIO : 0;
  } else {
    for (Request* r : accepted) {
      if (r->held) continue;  // watched once a pump submits it
      // On a descriptor that holds requests, every request libc has is
      // watched, so that its completion pumps the window.
      if (r->notify == Notify::kThread) {
        engine->Watch(r);
      } else if (engine->Holding(r->cb.aio_fildes)) {
        engine->Watch(r, false);
      }
    }
    // Room may be left in a window that already held requests.
    if (held) engine->PumpAll();
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
  // The engine's own descriptor: cancelling everything on it could take the
  // anchor (see wake.h).
  if (IsAnchorFd(fd)) return Napi::Number::New(env, -EBADF);
  Engine* engine = GetAddonData(env)->engine.get();
  engine->Flush();
  // First what the engine holds on fd (libc does not know it), then what
  // libc has; no pump runs in between.
  size_t held = engine->CancelHeldOn(fd);
  int rc = aio_cancel(fd, nullptr);
  if (rc < 0) return Napi::Number::New(env, -errno);
  // AIO_NOTCANCELED too: every queued request but the running one was
  // cancelled, out of queue order.
  if (rc != AIO_ALLDONE) engine->Kick();
  if (rc == AIO_ALLDONE && held != 0) rc = AIO_CANCELED;
  return Napi::Number::New(env, rc);
}

// aioInit(threads, num, idleTime): glibc tunables for the pool EnsurePool()
// starts (with one more thread for the anchor). False once the pool has
// started, and off glibc.
Napi::Value AioInit(const Napi::CallbackInfo& info) {
  int threads = IntArg(info[0], "threads", 1, 1 << 16);
  int num = IntArg(info[1], "num", 1, 1 << 20);
  int idle = IntArg(info[2], "idleTime", 0, 1 << 30);
  return Napi::Boolean::New(info.Env(), SetPoolConfig(threads, num, idle));
}

}  // namespace posix_aio
