// Module entry: constants from <aio.h>, the AioCb class and free functions.
// Context-aware: each environment (main thread, every Worker) gets its own
// AddonData and Engine, torn down by an env cleanup hook.
#include "addon.h"

#include <aio.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>

#include "aiocb.h"
#include "lio.h"
#include "nowait.h"

namespace posix_aio {

namespace {

// The engine must be stopped while the environment can still run cleanup:
// it cancels and waits for requests whose memory the environment owns.
void Cleanup(void* arg) {
  auto* data = static_cast<AddonData*>(arg);
  data->engine->Shutdown();
}

Napi::Value SetDispatcher(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "dispatcher must be a function");
  AddonData* data = GetAddonData(env);
  if (data->engine->ready()) throw Napi::Error::New(env, "dispatcher already set");
  if (!info[1].IsPromise()) throw Napi::TypeError::New(env, "never must be a promise");
  data->never = Napi::Persistent(info[1]);
  data->engine->Init(env, info[0].As<Napi::Function>());
  return env.Undefined();
}

// drainWrites(timeoutMs): waits (blocking, bounded) for this environment's
// writes and fsyncs in flight; the number still in flight. For the 'exit'
// listener: Node 20 runs no cleanup hook on process.exit().
Napi::Value DrainWrites(const Napi::CallbackInfo& info) {
  int ms = IntArg(info[0], "timeoutMs", 0, INT32_MAX);
  size_t left = GetAddonData(info.Env())->engine->DrainWrites(std::chrono::milliseconds(ms));
  return Napi::Number::New(info.Env(), static_cast<double>(left));
}

Napi::Value Flush(const Napi::CallbackInfo& info) {
  Engine* engine = GetAddonData(info.Env())->engine.get();
  engine->Flush();
  engine->PumpAll();
  return info.Env().Undefined();
}

// dup(fd) with close-on-exec: the new descriptor or -errno. glibc runs one
// request per descriptor at a time; duplicates let requests on one file run
// in parallel.
Napi::Value Dup(const Napi::CallbackInfo& info) {
  int fd = IntArg(info[0], "fd", 0, INT32_MAX);
  int r = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : r);
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  auto set = [&](const char* name, int v) { c.Set(name, Napi::Number::New(env, v)); };
  set("LIO_NOP", LIO_NOP);
  set("LIO_READ", LIO_READ);
  set("LIO_WRITE", LIO_WRITE);
  set("LIO_WAIT", LIO_WAIT);
  set("LIO_NOWAIT", LIO_NOWAIT);
  set("AIO_CANCELED", AIO_CANCELED);
  set("AIO_NOTCANCELED", AIO_NOTCANCELED);
  set("AIO_ALLDONE", AIO_ALLDONE);
  set("O_SYNC", O_SYNC);
  set("O_DSYNC", O_DSYNC);
  set("EINPROGRESS", EINPROGRESS);
  set("ECANCELED", ECANCELED);
  set("SIGRTMIN", SIGRTMIN);
  set("SIGRTMAX", SIGRTMAX);
#ifdef AIO_PRIO_DELTA_MAX
  set("AIO_PRIO_DELTA_MAX", AIO_PRIO_DELTA_MAX);
#else
  set("AIO_PRIO_DELTA_MAX", 0);
#endif
  // glibc has no list limit (sysconf says -1); others do.
  long listio_max = sysconf(_SC_AIO_LISTIO_MAX);
  set("AIO_LISTIO_MAX",
      listio_max > 0 && listio_max < INT32_MAX ? static_cast<int>(listio_max) : 0);
#ifdef O_DIRECT
  set("O_DIRECT", O_DIRECT);
#endif
  SetNowaitConstants(env, c);
  return c;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  napi_add_env_cleanup_hook(env, Cleanup, data);

  Napi::Function ctor = AioCbWrap::Init(env);
  data->aiocb_ctor = Napi::Persistent(ctor);
  exports.Set("NativeAioCb", ctor);
  exports.Set("setDispatcher", Napi::Function::New<SetDispatcher>(env, "setDispatcher"));
  exports.Set("dup", Napi::Function::New<Dup>(env, "dup"));
  exports.Set("flush", Napi::Function::New<Flush>(env, "flush"));
  exports.Set("drainWrites", Napi::Function::New<DrainWrites>(env, "drainWrites"));
  exports.Set("lioListio", Napi::Function::New<LioListio>(env, "lioListio"));
  exports.Set("aioSuspend", Napi::Function::New<AioSuspend>(env, "aioSuspend"));
  exports.Set("aioCancelAll", Napi::Function::New<AioCancelAll>(env, "aioCancelAll"));
  exports.Set("aioInit", Napi::Function::New<AioInit>(env, "aioInit"));
  exports.Set("alignedBuffer", Napi::Function::New<AlignedBuffer>(env, "alignedBuffer"));
  exports.Set("preadNowait", Napi::Function::New<PreadNowait>(env, "preadNowait"));
  exports.Set("fadvise", Napi::Function::New<Fadvise>(env, "fadvise"));
  exports.Set("fdFlags", Napi::Function::New<FdFlags>(env, "fdFlags"));
  exports.Set("constants", Constants(env));
  return exports;
}

}  // namespace

}  // namespace posix_aio

static Napi::Object InitPosixAio(Napi::Env env, Napi::Object exports) {
  return posix_aio::Init(env, exports);
}

NODE_API_MODULE(posix_aio, InitPosixAio)
