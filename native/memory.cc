// Aligned memory for O_DIRECT. The bytes live outside the JavaScript heap and
// are freed by the ArrayBuffer's finalizer; an operation in flight holds a
// reference to its view, so the finalizer cannot run before it completes.
#include <cstdlib>
#include <cstring>

#include "addon.h"

namespace posix_aio {

// alignedBuffer(size, alignment): an external ArrayBuffer whose address is a
// multiple of alignment (a power of two, at least sizeof(void*)).
Napi::Value AlignedBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t size = IntArg(info[0], "size", 0, INT32_MAX);
  int32_t alignment = IntArg(info[1], "alignment", 1, 1 << 30);
  size_t align = static_cast<size_t>(alignment);
  if (align < sizeof(void*)) align = sizeof(void*);
  if ((align & (align - 1)) != 0)
    throw Napi::RangeError::New(env, "alignment must be a power of two");
  void* p = nullptr;
  // A zero-length request still gets a real allocation so the address is valid.
  if (posix_memalign(&p, align, size == 0 ? align : static_cast<size_t>(size)) != 0) {
    throw Napi::Error::New(env, "posix_memalign failed: out of memory");
  }
  std::memset(p, 0, size == 0 ? align : static_cast<size_t>(size));
  return Napi::ArrayBuffer::New(env, p, static_cast<size_t>(size),
                                [](Napi::Env, void* data) { std::free(data); });
}

}  // namespace posix_aio
