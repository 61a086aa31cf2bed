#pragma once

#include <napi.h>

namespace posix_aio {

Napi::Value LioListio(const Napi::CallbackInfo& info);
Napi::Value AioSuspend(const Napi::CallbackInfo& info);
Napi::Value AioCancelAll(const Napi::CallbackInfo& info);
Napi::Value AioInit(const Napi::CallbackInfo& info);
Napi::Value AlignedBuffer(const Napi::CallbackInfo& info);

}  // namespace posix_aio
