// Calls that run on the JavaScript thread and never wait for a device: a
// page-cache-only read (preadv2 with RWF_NOWAIT), posix_fadvise, and the
// descriptor's status flags (to tell O_DIRECT descriptors apart). Mechanism
// only; when to use them is decided in src/api/nowait.ts.
#pragma once

#include <napi.h>

namespace posix_aio {

// preadNowait(fd, view, position, offset, length): bytes read, or -errno.
// -EAGAIN: the first byte is not in the page cache (nothing was read).
// -ENOSYS: built without preadv2/RWF_NOWAIT.
Napi::Value PreadNowait(const Napi::CallbackInfo& info);

// fadvise(fd, offset, length, advice): 0 or -errno.
Napi::Value Fadvise(const Napi::CallbackInfo& info);

// fdFlags(fd): fcntl(F_GETFL), or -errno.
Napi::Value FdFlags(const Napi::CallbackInfo& info);

// The POSIX_FADV_* values and whether RWF_NOWAIT reads were compiled in.
void SetNowaitConstants(Napi::Env env, Napi::Object constants);

}  // namespace posix_aio
