// One POSIX AIO control block and the bookkeeping that owns it.
//
// Ownership: a Request is freed only when its count drops to zero, in
// Unref(), and never while libc may still read or write its aiocb. Each
// holder below owns exactly one count; debug builds (POSIX_AIO_DEBUG, used
// by npm run test:asan) assert every row at each transition.
//
//   holder                     takes its count                drops it
//   -------------------------  -----------------------------  ------------------------------
//   the JavaScript wrapper     construction (refs = 1)        ~AioCbWrap (wrapped = false)
//   the live list (libc has    Engine::AddLive at submission, Engine::RemoveLive, only from
//     the aiocb, or the engine   or AddHeld when the            TryClaim once libc is done
//     holds it for submission:   descriptor's window is full    (or the engine cancelled a
//     kInProgress)                                               held one)
//   a reaper watch (Item)      Engine::Watch / WatchAll       Engine::Deliver, or Shutdown
//   a suspend wait entry       Engine::AddSuspend             Engine::Deliver, or Shutdown
//
// Hence: state == kInProgress <=> on_live, and a request on the live list
// is never freed. A held request (see Engine::AddHeld) is on the live list
// but not in libc and never watched: `held` ⇒ on_live, and Engine::Watch
// asserts !held. A request still in progress when its environment is torn
// down keeps its live count for ever: libc's pointer stays valid.
//
// Threads: every field is touched on the JavaScript thread only, except
// `cb`, which libc's workers write and the reaper reads through aio_error()
// and aio_suspend() (libc's own lock orders those accesses), and `seq` and
// `held`, atomic, which the reaper reads.
#pragma once

#include <aio.h>
#include <node_api.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "debug.h"

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
  // belongs to an earlier submission that was already observed. Written on
  // the JavaScript thread; the reaper reads it to drop stale watches.
  std::atomic<uint32_t> seq{0};
  // Slot of the JavaScript object in the registry of pending thread-mode ops.
  uint32_t slot = 0;
  // The wrapper's id in its engine (Engine::Register), 0 once it is gone.
  uint32_t id = 0;
  State state = State::kIdle;
  bool returned = false;    // aio_return() already handed out for this result
  bool wrapped = true;      // the JavaScript wrapper still exists
  bool write_only = false;  // built from an immutable slice
  bool on_live = false;     // holds the live list's count
  // Waiting in the engine for room in its descriptor's window (not in libc;
  // its status reads EINPROGRESS). The reaper reads it to never list such a
  // block in aio_suspend(), which returns at once for a block libc lacks.
  std::atomic<bool> held{false};
  // A held request that keeps the event loop alive (Engine::Hold) until it
  // is submitted or cancelled.
  bool loop_ref = false;
  // seq of the latest reaper watch: equal to seq when the current
  // submission is watched.
  uint32_t watched_seq = 0;
  int refs = 1;  // see the table above
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

  // The promise lioListio() made natively for this submission, settled by
  // AioCbWrap::Settle when JavaScript observes the completion, or made to
  // wait for ever when the wrapper goes first (~AioCbWrap).
  napi_deferred deferred = nullptr;

  // Keeps the JavaScript buffer alive while libc may touch it.
  napi_ref buffer_ref = nullptr;

  // A transfer on a descriptor that can block for ever (pipe, FIFO,
  // socket, terminal) goes through memory of the request's own: a read
  // still inside its system call when the environment ends (and its
  // buffers with it) would otherwise land in freed memory if data came
  // later, and a write would send whatever took that memory's place. The
  // request is never freed while libc holds it (it stays on the live list
  // for ever then), so that memory stays valid. See UseBounce/EndBounce.
  void* bounce = nullptr;
  void* user_buf = nullptr;  // the caller's buffer while `bounce` is in use
  int kind_fd = -1;          // the descriptor `may_block` was found for
  bool may_block = false;
  napi_env env = nullptr;

  // Position in this environment's submission order (AddLive), and the
  // links of the live list of its descriptor (oldest first).
  uint64_t order = 0;
  int live_fd = -1;
  Request* fd_prev = nullptr;
  Request* fd_next = nullptr;
  // Marks the request as already seen while one lioListio() call checks
  // its entries for duplicates (engine-wide counter, see Engine::NextMark).
  uint64_t mark = 0;

  // The priority glibc applies when ordering a descriptor's queue: it forces
  // 0 for LIO_SYNC/LIO_DSYNC (__aio_enqueue_request), so an fsync can overtake
  // older, less urgent requests.
  int EffectivePrio() const { return op == OpKind::kFsync ? 0 : prio; }

  // Prepares the block for a submission: restores aio_reqprio and fills
  // aio_sigevent. kThread completions are reaped, so libc is told SIGEV_NONE
  // and no thread is created per operation.
  void ArmSigevent();
  // Before a read or write goes to libc (JavaScript thread): on a
  // descriptor that may block for ever, points aio_buf at a copy of the
  // caller's buffer (the bytes too, for a write). Nothing changes when
  // the copy cannot be had. Idempotent.
  void UseBounce(bool write);
  // Once libc is done (or the submission was refused): a read's bytes go
  // to the caller's buffer, aio_buf points at it again, the copy is freed.
  void EndBounce();
  // Moves kInProgress to kDone if libc has finished; true when this call did.
  // May drop the live list's count (and so free the request: callers that
  // still need it hold a count of their own).
  bool TryClaim();
  // Drops one count; frees the block (and the buffer reference) at zero.
  void Unref();
};

}  // namespace posix_aio
