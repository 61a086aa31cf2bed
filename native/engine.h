// Completion engine: one per Node.js environment (main thread or Worker).
//
// Why a reaper: glibc implements SIGEV_THREAD by creating a new thread for
// every notification (about 60 us each here), which caps throughput near
// 11k ops/s. Instead, thread-notified requests are submitted with SIGEV_NONE
// and one long-lived reaper thread sleeps in aio_suspend() over them. It
// wakes when any completes, gathers every finished request, and hands the
// batch to JavaScript with one thread-safe-function call per drain.
//
// Waking the reaper (new submissions must join its aio_suspend() list):
// the reaper also lists its sentinel, and Sentinel::Fire() completes it with
// aio_cancel() (see wake.h). No libc worker is ever held per environment;
// the process pays one worker, for the anchor, added to glibc's pool. So any
// number of Workers, and aioInit({ threads: 1 }), keep every worker the user
// asked for. Options weighed (depth-1 and depth-64 `file.read`, bench/):
//   - a sentinel aio_read() on an eventfd per environment, completed by
//     writing the eventfd (the first design): each sleeping reaper parks a
//     worker, and 20 environments stalled the process;
//   - one process-wide reaper for every environment: one parked worker, but
//     a cross-environment hand-off on every completion and a shared lock;
//   - pthread_kill() with a no-op handler so aio_suspend() returns EINTR: a
//     signal sent just before the reaper enters its futex wait is lost, and
//     aio_suspend() has no signal mask argument to close that window;
//   - bounded polling: a wake-up every few milliseconds per environment;
//   - cancelling a sentinel queued behind the anchor (chosen): no lost
//     wake-up (a sentinel completed before the reaper sleeps makes
//     aio_suspend() return at once), no polling, one worker per process.
// A sleep is still bounded (kBackstop) as a safety net only.
// Measured against the eventfd design it replaces (4 KiB cached `file.read`
// through AIO, alternating runs of the two builds on the shared 2-core VM,
// 2026-12-02): depth 1, 15.8k/15.1k/15.4k ops/s against 17.2k/13.6k/15.0k;
// depth 64, 168k/122k/201k/162k against 158k/174k/209k/258k (medians 165k
// and 191k; each build's spread is wider than the difference). The other alternatives were rejected
// on the grounds above, not measured.
//
// Which requests the reaper lists: glibc runs one request per descriptor at
// a time, by effective priority then FIFO (Request::EffectivePrio). For each
// descriptor, the reaper lists the oldest watched request; when the
// descriptor's watched requests have different effective priorities it also
// lists the most urgent one and polls (kLeftOutPoll), since glibc may then
// complete them in an order the reaper cannot predict. A wake-up looks only
// at the front of each descriptor's queue, so its cost does not grow with
// the depth of one descriptor's queue; everything is looked at after a
// cancel or a refused tick flush (Kick) and at least once per kBackstop,
// for completions out of queue order nobody told this engine about
// (another environment's aio_cancel(fd, NULL) on a shared descriptor).
//
// The submission window (glibc only): glibc's __aio_enqueue_request() walks
// a descriptor's whole queue, under its global lock, to insert each request,
// so n requests queued on one descriptor cost O(n^2) there (in C alone, one
// lio_listio() of 100k reads on one descriptor took 8.3 s, 10k 230 ms). At
// most kWindow requests of this environment are in libc per descriptor at a
// time; beyond that a request is *held*: it is on the live list, reports
// EINPROGRESS, can be cancelled (by the engine, always), and goes to libc as
// earlier ones finish (Pump), most urgent first, then in submission order,
// as glibc would have run it. Pumps happen when the reaper delivers, at the
// tick flush, in a blocking lio_listio(LIO_WAIT) and at exit; while a
// descriptor holds requests, every one of its requests in libc is watched
// by the reaper (SigevNone ones included), so each completion leads to a
// pump.
//
// Lock order: Engine::mu_, then glibc's AIO lock (Sentinel::Fire under mu_).
// The reaper never holds mu_ while calling into libc.
#pragma once

#include <aio.h>
#include <napi.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "request.h"
#include "wake.h"

namespace posix_aio {

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

  // JavaScript thread. Starts glibc's pool (EnsurePool) and the reaper if
  // needed; false (errno set) when a thread or descriptor cannot be had.
  // Call before submitting anything the reaper must watch.
  bool EnsureReaper();
  // JavaScript thread. Hands a submitted request to the reaper (a count).
  // `hold` keeps the event loop alive until it completes (not for requests
  // whose JavaScript object was collected: nobody waits for them).
  void Watch(Request* req, bool hold = true);
  void WatchAll(const std::vector<Request*>& reqs);

  // Most requests of this environment in libc per descriptor (see above).
  static constexpr size_t kWindow = 256;

  // JavaScript thread. True when a new request on `fd` must be held: the
  // descriptor already holds some (order), or its window is full. `bypass`
  // (a list-level signal, which must cover what the list submits) only
  // skips the second rule. Always false off glibc.
  bool MustHold(int fd, bool bypass = false);
  // JavaScript thread. Takes a prepared request (seq, sigevent and op set,
  // state kInProgress) as held: the live list's count, status EINPROGRESS.
  // The caller makes sure a pump follows (tick flush, or its own PumpAll).
  void AddHeld(Request* req);
  // JavaScript thread. Whether `fd` holds requests (its requests in libc
  // must then be watched).
  bool Holding(int fd) const;
  // JavaScript thread. Submits held requests as far as each descriptor's
  // window allows.
  void PumpAll();
  // JavaScript thread. Cancels every held request on `fd` (aio_cancel(fd,
  // NULL) reaches only what libc has); returns how many.
  size_t CancelHeldOn(int fd);
  // JavaScript thread, blocking: waits until none of `reqs` is in progress,
  // pumping held ones as the window allows (lio_listio LIO_WAIT).
  void WaitAll(const std::vector<Request*>& reqs);

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
  // JavaScript thread. Makes the reaper look at every watched request
  // (after a cancel, which completes requests out of queue order).
  void Kick();

  // JavaScript thread. The live list: submissions libc holds (see the table
  // in request.h). AddLive takes a count and assigns the submission order;
  // RemoveLive drops it and may free the request.
  void AddLive(Request* req);
  void RemoveLive(Request* req);

  // JavaScript thread. aio_cancel() for one request, minding a glibc defect:
  // cancelling the request at the head of a descriptor's queue while it
  // waits for a worker (rt/aio_misc.c __aio_remove_request marks the next
  // one runnable but never puts it on the run list) strands every request
  // queued behind it, forever. A request can be that head unless an older
  // request of the same descriptor, at least as urgent in glibc's effective
  // priority, is still in progress (glibc keeps that one ahead of it);
  // otherwise it is not cancelled here: it runs and settles with its real
  // result (AIO_NOTCANCELED).
  // The older request may finish between that check and aio_cancel(); when
  // none is still in progress afterwards, the requests of ours behind the
  // cancelled one are cancelled and submitted again, in order, in case
  // glibc stranded them.
  int Cancel(Request* req);

  // JavaScript thread, at each submission that notifies with a standard
  // signal (real-time ones are kept handled by SignalUsable()). Node closes
  // its handler when the last process.on() listener goes, and glibc queues
  // the signal after the request's status is visible, so a completion could
  // arrive with the default action (death) in place. The engine keeps a
  // libuv signal handle of its own (unreferenced, no-op) for each such
  // signal for the rest of the environment's life, which keeps libuv's
  // handler installed. Main thread only (a Worker cannot take signals):
  // false elsewhere.
  bool KeepSignalHandled(int signo);

  // JavaScript thread ('exit' listener). Waits up to `timeout` for every
  // write and fsync in flight; returns how many are still in flight.
  size_t DrainWrites(std::chrono::milliseconds timeout);

  // Env cleanup hook: cancels what can be cancelled, waits (bounded) for the
  // rest, stops the reaper and the thread-safe function.
  void Shutdown();

  // JavaScript thread. Ids of this environment's blocks (AioCbWrap), so
  // that JavaScript can pass a list of them as a Uint32Array: Register at
  // construction, Unregister when the wrapper goes; 0 is never an id.
  uint32_t Register(Request* req);
  void Unregister(uint32_t id);
  Request* Lookup(uint32_t id) const { return id < ids_.size() ? ids_[id] : nullptr; }

  // A fresh mark for one duplicate check over a list (Request::mark).
  uint64_t NextMark() { return ++mark_; }

  bool stopped() const { return stopped_; }
  bool ready() const { return env_ != nullptr; }

 private:
  struct Item {
    Request* req;  // null for a suspend wait
    SuspendWait* wait;
    uint32_t seq;
    int fd;
    int prio;  // effective priority
    uint64_t order;
    bool held;  // counted in active_
  };
  // One request of the reaper's current aio_suspend() list.
  struct Listed {
    int fd;
    int prio;
    Request* req;
    uint32_t seq;
  };
  // The watched requests of one descriptor, oldest first.
  struct Group {
    std::deque<Item> items;
    bool mixed = false;  // different effective priorities
  };
  // This environment's live requests on one descriptor: those in libc
  // (oldest first) and the held ones (in the order they will be submitted).
  struct FdList {
    Request* head = nullptr;
    Request* tail = nullptr;
    size_t count = 0;  // in libc (or deferred to the tick flush)
    Request* held_head = nullptr;
    Request* held_tail = nullptr;
    bool holding = false;  // listed in holding_
  };

  static void CallJs(Napi::Env env, Napi::Function fn, Engine* self, void*);
  using Tsfn = Napi::TypedThreadSafeFunction<Engine, void, CallJs>;

  void Run();
  bool SurelyQueued(const Request* req) const;
  void PruneFinished(int fd);
  void RequeueAfter(Request* req);
  void Link(Request* req);
  void LinkHeld(FdList& l, Request* req);
  void Unlink(Request* req);
  void Pump(int fd);
  void CancelHeld(Request* req);
  void WatchRunning(int fd);
  void SubmitOne(Request* req);
  // lio_listio() of prepared reads and writes in chunks; each entry libc
  // refuses completes with that error. True when any was refused.
  bool SubmitBatch(const std::vector<Request*>& batch);
  void WakeLocked(const Request* req, bool force);
  void Hold();
  void Release();
  void Deliver(Napi::Env env, Napi::Function dispatcher);
  Item MakeItem(Request* req, bool hold) const;
  bool AssertJsThread() const;

  std::mutex mu_;
  std::vector<Item> incoming_;   // guarded by mu_
  std::vector<Item> completed_;  // guarded by mu_
  // The reaper's current aio_suspend() list, valid while sleeping_.
  // Guarded by mu_; the Request fields it points at are read on the
  // JavaScript thread only (the reaper holds a count on each).
  std::vector<Listed> sleep_list_;
  bool sleeping_ = false;      // in aio_suspend(), sentinel armed
  bool wake_pending_ = false;  // the sentinel was fired
  bool kick_pending_ = false;  // look at every watched request
  bool stopping_ = false;

  // JavaScript thread only.
  napi_env env_ = nullptr;
  std::thread::id js_thread_;
  Tsfn tsfn_;
  Napi::Reference<Napi::Float64Array> records_;
  size_t records_cap_ = 0;
  bool records_unsent_ = false;  // JavaScript has not been handed records_ yet
  uint64_t active_ = 0;          // watches + waits outstanding; refs the event loop
  bool tsfn_refd_ = false;
  bool stopped_ = false;
  bool stopping_teardown_ = false;  // Shutdown() has begun
  std::unordered_map<int, FdList> live_;
  std::vector<int> holding_;  // descriptors with held requests
  std::vector<Request*> ids_{nullptr};
  std::vector<uint32_t> free_ids_;
  size_t live_count_ = 0;
  uint64_t next_order_ = 0;
  uint64_t mark_ = 0;
  std::vector<Item> draining_;
  std::vector<Request*> deferred_;
  std::vector<struct aiocb*> flush_list_;
  // Standard signal -> the handle KeepSignalHandled() keeps (never closed:
  // closing would restore the default action while a completion may still
  // queue the signal; the main thread's loop is not closed at exit).
  std::unordered_map<int, uv_signal_t*> signal_handles_;

  // Allocated apart: should libc still hold it when the environment goes
  // away (only if the anchor was taken away), it is left allocated.
  Sentinel* sentinel_ = nullptr;
  bool sentinel_stuck_ = false;  // set by the reaper as it exits
  std::thread reaper_;
};

}  // namespace posix_aio
