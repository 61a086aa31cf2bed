// One POSIX AIO control block and the bookkeeping that owns it.
//
// A Request outlives the JavaScript object that created it whenever libc
// still holds a pointer to its aiocb: the wrapper, the reaper's watch list and
// teardown each hold a count, and the block is freed only when the last one
// lets go. Every field below is touched on the JavaScript thread only, except
// `cb`, which libc and the reaper read through aio_error()/aio_suspend().
#pragma once

#include <aio.h>
#include <node_api.h>

#include <cstdint>
#include <memory>

namespace posix_aio {

class Engine;

// How a completion is announced. kThread is delivered by the engine's reaper
// (see engine.h); kNone and kSignal are observed by polling, as in POSIX.
enum class Notify : uint8_t { kNone = 0, kThread = 1, kSignal = 2 };

enum class OpKind : uint8_t { kRead = 0, kWrite = 1, kFsync = 2 };

struct Request {
  enum class State : uint8_t { kIdle, kInProgress, kDone };

  struct aiocb cb {};
  std::shared_ptr<Engine> engine;

  // Identity of the current submission: a reaper delivery whose seq differs
  // belongs to an earlier submission that was already observed.
  uint32_t seq = 0;
  // Slot of the JavaScript object in the registry of pending thread-mode ops.
  uint32_t slot = 0;
  State state = State::kIdle;
  bool returned = false;    // aio_return() already handed out for this result
  bool wrapped = true;      // the JavaScript wrapper still exists
  bool write_only = false;  // built from an immutable slice
  int refs = 1;             // the wrapper + reaper watches + teardown
  int lio_opcode = LIO_NOP;
  // aio_reqprio as given: glibc's aio_fsync() overwrites the field.
  int prio = 0;
  // The current submission, so the engine can issue it again (Requeue()).
  OpKind op = OpKind::kRead;
  int fsync_mode = 0;
  Notify notify = Notify::kThread;
  int signo = 0;
  int sigval = 0;

  // Claimed result of the last completed submission.
  ssize_t ret = 0;
  int err = 0;

  // Keeps the JavaScript buffer alive while libc may touch it.
  napi_ref buffer_ref = nullptr;
  napi_env env = nullptr;

  // Position in this environment's submission order (AddLive).
  uint64_t order = 0;
  // Intrusive list of submissions in flight in this environment (teardown
  // walks it to cancel and wait).
  Request* live_prev = nullptr;
  Request* live_next = nullptr;

  // Prepares the block for a submission: restores aio_reqprio and fills
  // aio_sigevent. kThread completions are reaped, so libc is told SIGEV_NONE
  // and no thread is created per operation.
  void ArmSigevent();
  // Moves kInProgress to kDone if libc has finished; true when this call did.
  bool TryClaim();
  // Drops one count; frees the block (and the buffer reference) at zero.
  void Unref();
};

}  // namespace posix_aio
