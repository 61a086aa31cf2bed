// Per-environment addon state (napi instance data).
#pragma once

#include <napi.h>

#include <memory>

#include "engine.h"

namespace posix_aio {

struct AddonData {
  std::shared_ptr<Engine> engine = std::make_shared<Engine>();
  Napi::FunctionReference aiocb_ctor;
  // A promise that never settles (setDispatcher): see ~AioCbWrap.
  Napi::Reference<Napi::Value> never;
};

inline AddonData* GetAddonData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

// Throws a TypeError unless `v` is a 32-bit integer within [lo, hi].
int32_t IntArg(const Napi::Value& v, const char* name, int32_t lo, int32_t hi);

}  // namespace posix_aio
