#include "nowait.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "addon.h"

// preadv2 exists in glibc from 2.26 (declared in <sys/uio.h> under
// _GNU_SOURCE, which g++ defines); RWF_NOWAIT in its headers from 2.27 and in
// Linux from 4.14 for buffered reads. Elsewhere the read is compiled out and
// reports ENOSYS, which turns the fast path off.
#if defined(__linux__) && defined(RWF_NOWAIT) && defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 26))
#define POSIX_AIO_HAVE_NOWAIT 1
#else
#define POSIX_AIO_HAVE_NOWAIT 0
#endif

namespace posix_aio {

namespace {

int64_t PositionArg(const Napi::Value& v, const char* name) {
  if (v.IsBigInt()) {
    bool lossless = false;
    int64_t off = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless || off < 0)
      throw Napi::RangeError::New(v.Env(), std::string(name) + " is out of range");
    return off;
  }
  if (!v.IsNumber()) {
    throw Napi::TypeError::New(v.Env(), std::string(name) + " must be a number or bigint");
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<int64_t>(d))) {
    throw Napi::RangeError::New(v.Env(),
                                std::string(name) + " must be a non-negative safe integer");
  }
  return static_cast<int64_t>(d);
}

// Address and byte length of a TypedArray or DataView.
void View(const Napi::Value& v, uint8_t** data, size_t* length) {
  Napi::Env env = v.Env();
  void* p = nullptr;
  if (v.IsTypedArray()) {
    napi_typedarray_type type;
    size_t count;
    napi_value ab;
    size_t byte_offset;
    NAPI_THROW_IF_FAILED_VOID(
        env, napi_get_typedarray_info(env, v, &type, &count, &p, &ab, &byte_offset));
    *length = v.As<Napi::TypedArray>().ByteLength();
  } else if (v.IsDataView()) {
    auto dv = v.As<Napi::DataView>();
    p = dv.Data();
    *length = dv.ByteLength();
  } else {
    throw Napi::TypeError::New(env, "buffer must be an ArrayBufferView");
  }
  if (p == nullptr && *length > 0) throw Napi::TypeError::New(env, "buffer is detached");
  *data = static_cast<uint8_t*>(p);
}

}  // namespace

Napi::Value PreadNowait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = IntArg(info[0], "fd", 0, INT32_MAX);
  uint8_t* data;
  size_t size;
  View(info[1], &data, &size);
  int64_t position = PositionArg(info[2], "position");
  int32_t offset = IntArg(info[3], "offset", 0, INT32_MAX);
  int32_t length = IntArg(info[4], "length", 0, INT32_MAX);
  if (static_cast<size_t>(offset) + static_cast<size_t>(length) > size) {
    throw Napi::RangeError::New(env, "offset + length exceeds the buffer");
  }
#if POSIX_AIO_HAVE_NOWAIT
  struct iovec iov = {data + offset, static_cast<size_t>(length)};
  ssize_t r;
  do {
    r = preadv2(fd, &iov, 1, static_cast<off_t>(position), RWF_NOWAIT);
  } while (r < 0 && errno == EINTR);
  return Napi::Number::New(env, r < 0 ? -errno : static_cast<double>(r));
#else
  (void)fd;
  (void)data;
  (void)position;
  return Napi::Number::New(env, -ENOSYS);
#endif
}

Napi::Value Fadvise(const Napi::CallbackInfo& info) {
  int fd = IntArg(info[0], "fd", 0, INT32_MAX);
  int64_t offset = PositionArg(info[1], "offset");
  int64_t length = PositionArg(info[2], "length");
  int advice = IntArg(info[3], "advice", 0, 255);
  // posix_fadvise returns the error number; it does not set errno.
  int r = posix_fadvise(fd, static_cast<off_t>(offset), static_cast<off_t>(length), advice);
  return Napi::Number::New(info.Env(), -r);
}

Napi::Value FdFlags(const Napi::CallbackInfo& info) {
  int fd = IntArg(info[0], "fd", 0, INT32_MAX);
  int r = fcntl(fd, F_GETFL);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : r);
}

void SetNowaitConstants(Napi::Env env, Napi::Object c) {
  auto set = [&](const char* name, int v) { c.Set(name, Napi::Number::New(env, v)); };
  set("POSIX_FADV_NORMAL", POSIX_FADV_NORMAL);
  set("POSIX_FADV_SEQUENTIAL", POSIX_FADV_SEQUENTIAL);
  set("POSIX_FADV_RANDOM", POSIX_FADV_RANDOM);
  set("POSIX_FADV_WILLNEED", POSIX_FADV_WILLNEED);
  set("POSIX_FADV_DONTNEED", POSIX_FADV_DONTNEED);
  set("POSIX_FADV_NOREUSE", POSIX_FADV_NOREUSE);
  c.Set("HAVE_RWF_NOWAIT", Napi::Boolean::New(env, POSIX_AIO_HAVE_NOWAIT != 0));
}

}  // namespace posix_aio
