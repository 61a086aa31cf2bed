// Native half of AioCb: one wrapper per POSIX aiocb (see request.h for the
// ownership rules). Validation with clear messages happens in src/core; the
// checks here only keep bad values out of libc.
#pragma once

#include <napi.h>

#include "request.h"

namespace posix_aio {

class AioCbWrap : public Napi::ObjectWrap<AioCbWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit AioCbWrap(const Napi::CallbackInfo& info);
  ~AioCbWrap() override;

  // Null when `v` is not an AioCbWrap.
  static AioCbWrap* Unwrap(const Napi::Value& v);
  Request* request() { return req_; }

 private:
  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value Poll(const Napi::CallbackInfo& info);
  Napi::Value LastReturn(const Napi::CallbackInfo& info);
  Napi::Value Error(const Napi::CallbackInfo& info);
  Napi::Value Take(const Napi::CallbackInfo& info);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value State(const Napi::CallbackInfo& info);
  Napi::Value Opcode(const Napi::CallbackInfo& info);
  void SetSigev(const Napi::CallbackInfo& info);
  void ReleaseBuffer(const Napi::CallbackInfo& info);
  Napi::Value Retarget(const Napi::CallbackInfo& info);
  Napi::Value Id(const Napi::CallbackInfo& info);
  Napi::Value Settle(const Napi::CallbackInfo& info);

  Request* req_ = nullptr;
};

}  // namespace posix_aio
