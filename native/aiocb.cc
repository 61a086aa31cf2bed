#include "aiocb.h"

#include <cerrno>
#include <cstdint>

#include "addon.h"
#include "engine.h"
#include "signals.h"

namespace posix_aio {

namespace {

int64_t OffsetArg(const Napi::Value& v) {
  if (v.IsBigInt()) {
    bool lossless = false;
    int64_t off = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless || off < 0) {
      throw Napi::RangeError::New(v.Env(), "offset is out of range");
    }
    return off;
  }
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), "offset must be a number or bigint");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<int64_t>(d))) {
    throw Napi::RangeError::New(v.Env(), "offset must be a non-negative safe integer");
  }
  return static_cast<int64_t>(d);
}

// The bytes of an ArrayBufferView, or a TypeError.
void ViewBytes(const Napi::Value& view, void** data, size_t* length) {
  Napi::Env env = view.Env();
  if (view.IsTypedArray()) {
    auto ta = view.As<Napi::TypedArray>();
    napi_typedarray_type type;
    size_t count;
    napi_value ab;
    size_t byte_offset;
    NAPI_THROW_IF_FAILED_VOID(
        env, napi_get_typedarray_info(env, ta, &type, &count, data, &ab, &byte_offset));
    *length = ta.ByteLength();
  } else if (view.IsDataView()) {
    auto dv = view.As<Napi::DataView>();
    *data = dv.Data();
    *length = dv.ByteLength();
  } else {
    throw Napi::TypeError::New(env, "buffer must be an ArrayBufferView");
  }
  if (*data == nullptr && *length > 0) throw Napi::TypeError::New(env, "buffer is detached");
}

}  // namespace

int32_t IntArg(const Napi::Value& v, const char* name, int32_t lo, int32_t hi) {
  if (!v.IsNumber()) {
    throw Napi::TypeError::New(v.Env(), std::string(name) + " must be an integer");
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != static_cast<double>(static_cast<int32_t>(d))) {
    throw Napi::RangeError::New(v.Env(), std::string(name) + " is out of range");
  }
  return static_cast<int32_t>(d);
}

Napi::Function AioCbWrap::Init(Napi::Env env) {
  return DefineClass(env, "NativeAioCb",
                     {
                         InstanceMethod<&AioCbWrap::Submit>("submit"),
                         InstanceMethod<&AioCbWrap::Poll>("poll"),
                         InstanceMethod<&AioCbWrap::LastReturn>("lastReturn"),
                         InstanceMethod<&AioCbWrap::Error>("error"),
                         InstanceMethod<&AioCbWrap::Take>("take"),
                         InstanceMethod<&AioCbWrap::Cancel>("cancel"),
                         InstanceMethod<&AioCbWrap::State>("state"),
                         InstanceMethod<&AioCbWrap::Opcode>("opcode"),
                         InstanceMethod<&AioCbWrap::SetSigev>("setSigev"),
                         InstanceMethod<&AioCbWrap::ReleaseBuffer>("releaseBuffer"),
                         InstanceMethod<&AioCbWrap::Retarget>("retarget"),
                         InstanceMethod<&AioCbWrap::Id>("id"),
                         InstanceMethod<&AioCbWrap::Settle>("settle"),
                     });
}

namespace {
// Marks every NativeAioCb (napi_type_tag_object): a check that JavaScript
// cannot forge, and cheaper than instanceof on lists of 100k entries.
constexpr napi_type_tag kAioCbTag = {0x706f7369782d6169ULL, 0x6f2d4169634362ULL};
}  // namespace

AioCbWrap* AioCbWrap::Unwrap(const Napi::Value& v) {
  if (!v.IsObject()) return nullptr;
  bool tagged = false;
  if (napi_check_object_type_tag(v.Env(), v, &kAioCbTag, &tagged) != napi_ok || !tagged) {
    return nullptr;
  }
  return Napi::ObjectWrap<AioCbWrap>::Unwrap(v.As<Napi::Object>());
}

// new NativeAioCb(fd, offset, view | null, prio, notify, signo, sigval,
//                 lioOpcode, writeOnly)
AioCbWrap::AioCbWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AioCbWrap>(info) {
  Napi::Env env = info.Env();
  auto r = std::make_unique<Request>();
  r->engine = GetAddonData(env)->engine;
  r->env = env;
  r->cb.aio_fildes = IntArg(info[0], "fd", 0, INT32_MAX);
  r->cb.aio_offset = static_cast<off_t>(OffsetArg(info[1]));
  r->prio = IntArg(info[3], "prio", 0, INT32_MAX);
  r->cb.aio_reqprio = r->prio;
  r->notify = static_cast<Notify>(IntArg(info[4], "notify", 0, 2));
  r->signo = IntArg(info[5], "signal", 0, 1024);
  r->sigval = static_cast<int>(info[6].As<Napi::Number>().Int32Value());
  r->lio_opcode = IntArg(info[7], "opcode", INT32_MIN, INT32_MAX);
  r->cb.aio_lio_opcode = r->lio_opcode;
  r->write_only = info[8].ToBoolean();
  NAPI_THROW_IF_FAILED_VOID(env, napi_type_tag_object(env, info.This(), &kAioCbTag));
  // The buffer reference is taken last: nothing below may throw.
  Napi::Value view = info[2];
  if (!view.IsNull() && !view.IsUndefined()) {
    void* data = nullptr;
    size_t length = 0;
    ViewBytes(view, &data, &length);
    r->cb.aio_buf = data;
    r->cb.aio_nbytes = length;
    NAPI_THROW_IF_FAILED_VOID(env, napi_create_reference(env, view, 1, &r->buffer_ref));
  }
  r->id = r->engine->Register(r.get());
  req_ = r.release();
}

AioCbWrap::~AioCbWrap() {
  Request* r = req_;
  if (r == nullptr) return;
  r->wrapped = false;
  Engine* engine = r->engine.get();
  engine->Unregister(r->id);
  r->id = 0;
  if (r->deferred != nullptr) {
    // The block is gone, so nothing can observe its operation any more:
    // its promise stays pending for ever, as a JavaScript one would. Taking
    // on the state of a promise that never settles frees the deferred
    // without settling it (so no rejection nobody handles). Fails, and
    // leaves it, only when the environment is going away.
    napi_resolve_deferred(Env(), r->deferred, GetAddonData(Env())->never.Value());
    r->deferred = nullptr;
  }
  if (!engine->stopped()) {
    engine->Flush();
    // A held one is watched when a pump submits it.
    if (r->state == Request::State::kInProgress && !r->TryClaim() && !r->held &&
        engine->EnsureReaper()) {
      // Collected while libc still owns the block: it runs to completion
      // (a dropped write must not be lost; a signal may still tell someone
      // that a read landed) and the reaper claims it. The live list's count
      // keeps it allocated until then (for ever, if the environment ends
      // first). Only an explicit dispose cancels.
      engine->Watch(r, false);
    }
  }
  r->Unref();
}

// submit(op, fsyncMode, slot): 0, an errno from the submitting call, -1
// when the block is still in progress, -2 when deferred to a flush the
// caller must schedule.
Napi::Value AioCbWrap::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Request* r = req_;
  Engine* engine = r->engine.get();
  auto op = static_cast<OpKind>(info[0].As<Napi::Number>().Int32Value());
  if (op != OpKind::kRead && op != OpKind::kWrite && op != OpKind::kFsync) {
    throw Napi::RangeError::New(env, "unknown operation");
  }
  bool defer = r->notify == Notify::kThread && op != OpKind::kFsync && Engine::CanDefer();
  // Submissions keep their order: anything not deferred goes after the
  // deferred ones (an fsync must follow the writes before it).
  if (!defer) engine->Flush();
  if (r->state == Request::State::kInProgress && !r->TryClaim()) {
    return Napi::Number::New(env, -1);
  }
  int fsync_mode = info[1].As<Napi::Number>().Int32Value();
  if (engine->stopped()) return Napi::Number::New(env, EBADF);
  if (r->notify == Notify::kSignal &&
      (!SignalUsable(r->signo) || !engine->KeepSignalHandled(r->signo))) {
    return Napi::Number::New(env, EINVAL);
  }
  // The pool (and, for thread notification, the reaper) must exist before
  // libc owns the request; failing here leaves the block as it was.
  bool started = r->notify == Notify::kThread ? engine->EnsureReaper() : EnsurePool();
  if (!started) return Napi::Number::New(env, errno != 0 ? errno : EAGAIN);
  r->slot = info[2].As<Napi::Number>().Uint32Value();
  r->seq++;
  r->returned = false;
  r->op = op;
  r->fsync_mode = fsync_mode;
  r->ArmSigevent();
  if (op != OpKind::kFsync) r->UseBounce(op == OpKind::kWrite);
  if (engine->MustHold(r->cb.aio_fildes)) {
    // The descriptor's window is full: the engine submits it later, and
    // the tick flush pumps.
    r->state = Request::State::kInProgress;
    engine->AddHeld(r);
    return Napi::Number::New(env, -2);
  }
  if (defer) {
    r->cb.aio_lio_opcode = op == OpKind::kRead ? LIO_READ : LIO_WRITE;
    r->state = Request::State::kInProgress;
    engine->AddLive(r);
    return Napi::Number::New(env, engine->Defer(r) ? -2 : 0);
  }
  int rc;
  switch (op) {
    case OpKind::kRead:
      rc = aio_read(&r->cb);
      break;
    case OpKind::kWrite:
      rc = aio_write(&r->cb);
      break;
    default:
      rc = aio_fsync(fsync_mode, &r->cb);
      break;
  }
  if (rc != 0) {
    int e = errno;
    r->state = Request::State::kDone;
    r->ret = -1;
    r->err = e;
    r->EndBounce();
    return Napi::Number::New(env, e);
  }
  r->state = Request::State::kInProgress;
  engine->AddLive(r);
  if (r->notify == Notify::kThread) engine->Watch(r);
  return Napi::Number::New(env, 0);
}

// poll(): when this call observes completion, the errno (0 for success);
// otherwise -1.
Napi::Value AioCbWrap::Poll(const Napi::CallbackInfo& info) {
  req_->engine->Flush();
  // A held request moves only through a pump: a loop that polls without
  // yielding to the event loop must still see it complete.
  if (req_->held) req_->engine->PumpAll();
  return Napi::Number::New(info.Env(), req_->TryClaim() ? req_->err : -1);
}

Napi::Value AioCbWrap::LastReturn(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(req_->ret));
}

// aio_error(): libc's status while in progress, the claimed one after.
Napi::Value AioCbWrap::Error(const Napi::CallbackInfo& info) {
  Request* r = req_;
  r->engine->Flush();
  if (r->held) r->engine->PumpAll();  // see Poll()
  int e = 0;
  // A final status is claimed first: a read through the request's own
  // memory (UseBounce) reaches the caller's buffer only then.
  if (r->state == Request::State::kInProgress && !r->TryClaim()) {
    e = aio_error(&r->cb);
  } else if (r->state == Request::State::kDone) {
    e = r->err;
  }
  return Napi::Number::New(info.Env(), e);
}

// aio_return() with the one-shot rule: the result (>= 0) or -errno.
Napi::Value AioCbWrap::Take(const Napi::CallbackInfo& info) {
  Request* r = req_;
  double v;
  if (r->state == Request::State::kInProgress) {
    v = -EINPROGRESS;
  } else if (r->state == Request::State::kIdle || r->returned) {
    v = -EINVAL;
  } else {
    r->returned = true;
    v = r->err != 0 ? -r->err : static_cast<double>(r->ret);
  }
  return Napi::Number::New(info.Env(), v);
}

// aio_cancel(fd, this) through Engine::Cancel: an AIO_* status, or -errno.
Napi::Value AioCbWrap::Cancel(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), req_->engine->Cancel(req_));
}

Napi::Value AioCbWrap::State(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<int>(req_->state));
}

// aio_lio_opcode as libc left it (aio_read() and friends overwrite it).
Napi::Value AioCbWrap::Opcode(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), req_->cb.aio_lio_opcode);
}

void AioCbWrap::SetSigev(const Napi::CallbackInfo& info) {
  Request* r = req_;
  if (r->state == Request::State::kInProgress) {
    throw Napi::Error::New(info.Env(), "cannot change notification while in progress");
  }
  // A libc worker may still be reading the old sigevent in its notify step
  // after the status became visible; aio_cancel() takes glibc's AIO lock,
  // so once it returns that worker is done with the block.
  if (r->state == Request::State::kDone) aio_cancel(r->cb.aio_fildes, &r->cb);
  r->notify = static_cast<Notify>(IntArg(info[0], "notify", 0, 2));
  r->signo = IntArg(info[1], "signal", 0, 1024);
  r->sigval = info[2].As<Napi::Number>().Int32Value();
}

void AioCbWrap::ReleaseBuffer(const Napi::CallbackInfo& info) {
  Request* r = req_;
  if (r->state == Request::State::kInProgress) {
    throw Napi::Error::New(info.Env(), "cannot take the buffer while in progress");
  }
  if (r->buffer_ref != nullptr) {
    napi_delete_reference(r->env, r->buffer_ref);
    r->buffer_ref = nullptr;
  }
  r->cb.aio_buf = nullptr;
  r->cb.aio_nbytes = 0;
}

}  // namespace posix_aio

namespace posix_aio {

// id(): this block's id in its engine (lioListio takes lists of ids).
Napi::Value AioCbWrap::Id(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), req_->id);
}

// settle(result, error?): settles the promise lioListio() made natively for
// the current operation: rejects with `error` when given, else resolves
// with `result`. False when there is none.
Napi::Value AioCbWrap::Settle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  napi_deferred d = req_->deferred;
  if (d == nullptr) return Napi::Boolean::New(env, false);
  req_->deferred = nullptr;
  napi_status st = info.Length() > 1 && !info[1].IsUndefined()
                       ? napi_reject_deferred(env, d, info[1])
                       : napi_resolve_deferred(env, d, info[0]);
  NAPI_THROW_IF_FAILED(env, st, Napi::Value());
  return Napi::Boolean::New(env, true);
}

// retarget(fd, offset, view, prio): points an idle block at new values
// (library-owned blocks reused on hot paths). False while in progress.
Napi::Value AioCbWrap::Retarget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Request* r = req_;
  if (r->state == Request::State::kInProgress && !r->TryClaim())
    return Napi::Boolean::New(env, false);
  int fd = IntArg(info[0], "fd", 0, INT32_MAX);
  int64_t offset = OffsetArg(info[1]);
  int prio = IntArg(info[3], "prio", 0, INT32_MAX);
  void* data = nullptr;
  size_t length = 0;
  ViewBytes(info[2], &data, &length);
  napi_ref ref;
  NAPI_THROW_IF_FAILED(env, napi_create_reference(env, info[2], 1, &ref), Napi::Value());
  if (r->buffer_ref != nullptr) napi_delete_reference(env, r->buffer_ref);
  r->buffer_ref = ref;
  r->cb.aio_fildes = fd;
  r->cb.aio_offset = static_cast<off_t>(offset);
  r->cb.aio_buf = data;
  r->cb.aio_nbytes = length;
  r->prio = prio;
  r->state = Request::State::kIdle;
  return Napi::Boolean::New(env, true);
}

}  // namespace posix_aio
