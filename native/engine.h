// Completion engine: one per Node.js environment (main thread or Worker).
//
// Why a reaper: glibc implements SIGEV_THREAD by creating a new thread for
// every notification (about 60 us each here), which caps throughput near
// 11k ops/s. Instead, thread-notified requests are submitted with SIGEV_NONE
// and one long-lived reaper thread sleeps in aio_suspend() over them. It
// wakes when any completes, gathers every finished request, and hands the
// batch to JavaScript with one thread-safe-function call per drain.
//
// New submissions must join the reaper's aio_suspend() list. The reaper is
// woken through a sentinel aio_read() on an eventfd: writing the eventfd
// completes the sentinel, which ends the wait. glibc runs one request per
// descriptor at a time in priority-then-FIFO order, so a new request queued
// behind one the reaper already waits on cannot finish first; such
// submissions skip the wake-up altogether.
//
// Lock order: Engine::mu_ only; it is never held while calling into libc
// except the eventfd write.
#pragma once

#include <aio.h>
#include <napi.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "request.h"

namespace posix_aio {

// The reaper's wake-up request: an aio_read() of 8 bytes on an eventfd. It
// lives apart from the Engine so that, should libc still hold it when the
// environment goes away, it can be left allocated instead of freed under libc.
struct Sentinel {
  struct aiocb cb {};
  uint64_t value = 0;
  int fd = -1;
};

// An aio_suspend() made from JavaScript, answered by the reaper.
struct SuspendWait {
  std::vector<Request*> list;  // each holds a count until delivered
  bool has_deadline = false;
  std::chrono::steady_clock::time_point deadline;
  uint32_t slot = 0;
  int result = 0;  // 0: one finished; EAGAIN: timed out
};

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  // Kinds of records handed to the JavaScript dispatcher.
  static constexpr double kOpRecord = 0;
  static constexpr double kSuspendRecord = 1;

  Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();

  // JavaScript thread. Sets the dispatcher(count, records?) called with
  // completions. Must precede any Watch().
  void Init(Napi::Env env, Napi::Function dispatcher);

  // JavaScript thread. Starts the reaper if needed; false (errno set) when
  // a thread or eventfd cannot be had. Call before submitting anything the
  // reaper must watch.
  bool EnsureReaper();
  // JavaScript thread. Hands a thread-notified submission to the reaper.
  // `hold` keeps the event loop alive until it completes (not for requests
  // whose JavaScript object was collected: nobody waits for them).
  void Watch(Request* req, bool hold = true);
  void WatchAll(const std::vector<Request*>& reqs);

  // JavaScript thread. Tick batching: a thread-notified read or write is
  // queued here and submitted with the others of the same tick by one
  // lio_listio() in Flush(), so glibc's global AIO lock is taken once per
  // batch instead of once per request. Returns true when the queue was
  // empty (the caller schedules a flush). glibc only: the batch relies on
  // reading and presetting the aiocb's status field.
  bool Defer(Request* req);
  // Submits the deferred queue. Every entry point that looks at a request's
  // libc state calls it first, so a deferred request is never observed
  // unsubmitted. Requests libc refuses complete with its error.
  void Flush();
  static bool CanDefer();
  // JavaScript thread. Registers an aio_suspend() wait.
  void AddSuspend(SuspendWait* wait);
  // JavaScript thread. Forces the reaper to rescan (after a cancel).
  void Kick();

  // JavaScript thread. Tracks submissions in flight for teardown.
  void AddLive(Request* req);
  void RemoveLive(Request* req);

  // JavaScript thread. aio_cancel() for one request, minding a glibc defect:
  // cancelling the request at the head of a descriptor's queue while it
  // waits for a worker (rt/aio_misc.c __aio_remove_request marks the next
  // one runnable but never puts it on the run list) strands every request
  // queued behind it, forever. A request can be that head unless an older
  // request of the same descriptor, at least as urgent, is still in progress
  // (glibc keeps that one ahead of it); otherwise it is not cancelled here:
  // it runs and settles with its real result (AIO_NOTCANCELED).
  // The older request may finish between that check and aio_cancel(); when
  // none is still in progress afterwards, the requests of ours behind the
  // cancelled one are cancelled and submitted again, in order, in case
  // glibc stranded them.
  int Cancel(Request* req);

  // Env cleanup hook: cancels what can be cancelled, waits (bounded) for the
  // rest, stops the reaper and the thread-safe function.
  void Shutdown();

  bool stopped() const { return stopped_; }
  bool ready() const { return env_ != nullptr; }

 private:
  struct Item {
    Request* req;  // null for a suspend wait
    SuspendWait* wait;
    uint32_t seq;
    int fd;
    int prio;
    bool held;  // counted in active_
  };
  // One request of the reaper's current aio_suspend() list.
  struct Listed {
    int fd;
    int prio;
    Request* req;
    uint32_t seq;
  };

  static void CallJs(Napi::Env env, Napi::Function fn, Engine* self, void*);
  using Tsfn = Napi::TypedThreadSafeFunction<Engine, void, CallJs>;

  void Run();
  bool SurelyQueued(const Request* req) const;
  void RequeueAfter(const Request* req);
  void WakeLocked(const Request* req, bool force);
  void ReleaseSentinel(bool& armed);
  void Hold();
  void Release();
  void Deliver(Napi::Env env, Napi::Function dispatcher);

  std::mutex mu_;
  std::vector<Item> incoming_;   // guarded by mu_
  std::vector<Item> completed_;  // guarded by mu_
  // The reaper's current aio_suspend() list, valid while sleeping_.
  // Guarded by mu_; the Request fields it points at are read on the
  // JavaScript thread only (the reaper holds a count on each).
  std::vector<Listed> sleep_list_;
  bool sleeping_ = false;  // in aio_suspend()
  bool idle_ = false;      // waiting on idle_cv_ with nothing to watch
  std::condition_variable idle_cv_;
  bool wake_pending_ = false;
  bool stopping_ = false;

  // JavaScript thread only.
  napi_env env_ = nullptr;
  Tsfn tsfn_;
  Napi::Reference<Napi::Float64Array> records_;
  size_t records_cap_ = 0;
  bool records_unsent_ = false;  // JavaScript has not been handed records_ yet
  uint64_t active_ = 0;          // watches + waits outstanding; refs the event loop
  bool tsfn_refd_ = false;
  bool stopped_ = false;
  Request* live_head_ = nullptr;
  uint64_t next_order_ = 0;
  std::vector<Item> draining_;
  std::vector<Request*> deferred_;
  std::vector<struct aiocb*> flush_list_;

  Sentinel* sentinel_ = nullptr;
  bool sentinel_stuck_ = false;  // set by the reaper as it exits
  std::thread reaper_;
};

}  // namespace posix_aio
