#include "engine.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "signals.h"

namespace posix_aio {

namespace {

// glibc registers a wait entry on each request an aio_suspend() lists and
// finds each by a linear walk of its descriptor's queue, all under its
// global AIO lock, so the reaper lists at most two per descriptor and this
// many overall. Whatever is left out is polled at kLeftOutPoll.
constexpr size_t kMaxList = 256;
constexpr auto kLeftOutPoll = std::chrono::milliseconds(20);
// Longest sleep with nothing left out: a safety net only, every wake-up
// goes through the sentinel.
constexpr auto kBackstop = std::chrono::milliseconds(1000);
// How long teardown waits for requests libc cannot cancel (a read on a pipe
// nobody writes never ends).
constexpr auto kTeardownWait = std::chrono::milliseconds(2000);
#ifdef __GLIBC__
// Most aiocbs per lio_listio(): glibc puts per-entry arrays on the stack.
constexpr size_t kFlushChunk = 1024;
#endif

void SleepOn(const std::vector<const struct aiocb*>& list, std::chrono::nanoseconds timeout) {
  auto ns = std::max<int64_t>(0, timeout.count());
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(ns / 1000000000);
  ts.tv_nsec = static_cast<long>(ns % 1000000000);
  // EINTR and EAGAIN both just mean "look again".
  aio_suspend(list.data(), static_cast<int>(list.size()), &ts);
}

// aio_error() is a plain load of an aligned int that a libc worker stores
// under glibc's lock; a stale EINPROGRESS only delays the observation to the
// next look (glibc's own aio_suspend() reads it the same way).
bool Running(const struct aiocb* cb) { return aio_error(cb) == EINPROGRESS; }

}  // namespace

Engine::~Engine() {
  if (sentinel_ != nullptr && !sentinel_stuck_) delete sentinel_;
}

bool Engine::AssertJsThread() const {
  return env_ == nullptr || js_thread_ == std::this_thread::get_id();
}

void Engine::Init(Napi::Env env, Napi::Function dispatcher) {
  env_ = env;
  js_thread_ = std::this_thread::get_id();
  tsfn_ = Tsfn::New(env, dispatcher, "posix-aio:completions", 0, 1, this);
  // Idle, the addon must not keep the event loop alive.
  tsfn_.Unref(env);
}

bool Engine::EnsureReaper() {
  AIO_ASSERT(AssertJsThread());
  if (reaper_.joinable()) return true;
  if (stopped_) {
    errno = EBADF;
    return false;
  }
  if (!EnsurePool()) return false;
  if (sentinel_ == nullptr) sentinel_ = new Sentinel();
  try {
    reaper_ = std::thread([this] { Run(); });
  } catch (const std::system_error& e) {
    errno = e.code().value() != 0 ? e.code().value() : EAGAIN;
    return false;
  }
  return true;
}

void Engine::Hold() {
  if (active_++ == 0 && !tsfn_refd_ && !stopped_) {
    tsfn_.Ref(env_);
    tsfn_refd_ = true;
  }
}

void Engine::Release() {
  AIO_ASSERT(active_ > 0);
  if (--active_ == 0 && tsfn_refd_ && !stopped_) {
    tsfn_.Unref(env_);
    tsfn_refd_ = false;
  }
}

void Engine::Link(Request* req) {
  FdList& l = live_[req->live_fd];
  req->fd_next = nullptr;
  req->fd_prev = l.tail;
  if (l.tail != nullptr) l.tail->fd_next = req;
  l.tail = req;
  if (l.head == nullptr) l.head = req;
}

void Engine::Unlink(Request* req) {
  auto it = live_.find(req->live_fd);
  AIO_ASSERT(it != live_.end());
  FdList& l = it->second;
  if (req->fd_prev != nullptr) {
    req->fd_prev->fd_next = req->fd_next;
  } else {
    l.head = req->fd_next;
  }
  if (req->fd_next != nullptr) {
    req->fd_next->fd_prev = req->fd_prev;
  } else {
    l.tail = req->fd_prev;
  }
  req->fd_prev = req->fd_next = nullptr;
  if (l.head == nullptr) live_.erase(it);
}

void Engine::AddLive(Request* req) {
  AIO_ASSERT(AssertJsThread());
  AIO_ASSERT(!req->on_live && req->refs >= 1);
  req->refs++;
  req->on_live = true;
  req->order = ++next_order_;
  req->live_fd = req->cb.aio_fildes;
  Link(req);
  live_count_++;
}

void Engine::RemoveLive(Request* req) {
  AIO_ASSERT(AssertJsThread());
  AIO_ASSERT(req->on_live && req->state != Request::State::kInProgress);
  Unlink(req);
  req->on_live = false;
  live_count_--;
  req->Unref();
}

void Engine::PruneFinished(int fd) {
  // Requests libc finished that nobody has observed yet (SigevNone and
  // SigevSignal ones, or collected blocks) stay on the live list until
  // claimed; claiming them from the oldest end keeps the walks below short.
  // Thread-notified ones are left to the reaper, whose delivery must be the
  // claim that settles their promise.
  auto it = live_.find(fd);
  while (it != live_.end()) {
    Request* x = it->second.head;
    if (x == nullptr || Running(&x->cb) || (x->notify == Notify::kThread && x->wrapped)) break;
    x->refs++;
    x->TryClaim();
    x->Unref();
    it = live_.find(fd);
  }
}

bool Engine::SurelyQueued(const Request* req) const {
  // Some older request of ours on the descriptor, at least as urgent, is
  // still in progress: glibc keeps it ahead of req, so req is not the head.
  // Oldest first: the first one usually settles it.
  auto it = live_.find(req->live_fd);
  if (it == live_.end()) return false;
  int prio = req->EffectivePrio();
  for (const Request* x = it->second.head; x != nullptr && x != req; x = x->fd_next) {
    if (x->order < req->order && x->EffectivePrio() <= prio && Running(&x->cb)) return true;
  }
  return false;
}

int Engine::Cancel(Request* req) {
  AIO_ASSERT(AssertJsThread());
  Flush();
  if (IsAnchorFd(req->cb.aio_fildes)) return AIO_NOTCANCELED;
  if (req->on_live) PruneFinished(req->live_fd);
  bool checked = req->state == Request::State::kInProgress && Running(&req->cb);
  if (checked && !SurelyQueued(req)) return AIO_NOTCANCELED;
  int rc = aio_cancel(req->cb.aio_fildes, &req->cb);
  if (rc < 0) return -errno;
  // The older request that made req look safely queued may have finished
  // just before glibc took our cancel; if none is in progress now, req may
  // have been the head, and what queued behind it may be stranded.
  if (rc == AIO_CANCELED && checked && !SurelyQueued(req)) RequeueAfter(req);
  // A cancelled request completes out of queue order: make the reaper look
  // at everything.
  if (rc == AIO_CANCELED) Kick();
  return rc;
}

void Engine::RequeueAfter(Request* req) {
  if (!req->on_live) return;
  // Everything of ours still queued on the descriptor may sit in the
  // stranded chain: the newer requests, and older, less urgent ones that a
  // more urgent req overtook. In glibc's queue order (effective priority,
  // then submission) the first one still running means a worker has the
  // queue again, and nothing after it is stranded.
  std::vector<Request*> queued;
  auto it = live_.find(req->live_fd);
  if (it == live_.end()) return;
  for (Request* x = it->second.head; x != nullptr; x = x->fd_next) {
    if (x != req && x->state == Request::State::kInProgress && Running(&x->cb)) {
      queued.push_back(x);
    }
  }
  std::stable_sort(queued.begin(), queued.end(), [](const Request* a, const Request* b) {
    return a->EffectivePrio() < b->EffectivePrio();
  });
  // First take every one of them out of glibc's queue, then submit them
  // again: a request submitted while the stranded chain still holds others
  // would be appended to that chain and stranded with it.
  std::vector<Request*> again;
  for (Request* x : queued) {
    int rc = aio_cancel(x->cb.aio_fildes, &x->cb);
    // Running: glibc's worker has the descriptor's queue again.
    if (rc == AIO_NOTCANCELED) break;
    if (rc == AIO_CANCELED) again.push_back(x);
  }
  for (Request* x : again) {
    // A new seq makes the reaper's view of the cancelled submission stale;
    // the same operation goes in again at the back of the descriptor's
    // queue, so it moves to the back of our list too (same live count).
    x->seq++;
    Unlink(x);
    x->order = ++next_order_;
    Link(x);
    x->ArmSigevent();
    int sub;
    switch (x->op) {
      case OpKind::kRead:
        sub = aio_read(&x->cb);
        break;
      case OpKind::kWrite:
        sub = aio_write(&x->cb);
        break;
      default:
        sub = aio_fsync(x->fsync_mode, &x->cb);
        break;
    }
#ifdef __GLIBC__
    if (sub != 0) {
      // Completed with the submission's error, seen like any completion.
      __atomic_store_n(&x->cb.__return_value, -1, __ATOMIC_RELAXED);
      __atomic_store_n(&x->cb.__error_code, errno, __ATOMIC_RELEASE);
    }
#else
    (void)sub;
#endif
    // Whoever watched the old submission now holds a stale seq: a request
    // JavaScript waits on, or one whose wrapper was collected (nobody else
    // would ever claim it), is watched again.
    if (x->notify == Notify::kThread || !x->wrapped) Watch(x, x->wrapped);
  }
}

// Caller holds mu_ (JavaScript thread). A reaper asleep in aio_suspend() is
// woken by firing its sentinel. Skipped when the reaper is awake (it drains
// incoming_ before it sleeps again) or already being woken, and on glibc
// when it sleeps on a request of the same descriptor that runs first: glibc
// runs one request per descriptor at a time, by priority then FIFO, so the
// new one cannot finish before that one wakes the reaper.
void Engine::WakeLocked(const Request* req, bool force) {
  if (!sleeping_ || wake_pending_) return;
#ifdef __GLIBC__
  if (!force && req != nullptr) {
    int prio = req->EffectivePrio();
    for (const Listed& l : sleep_list_) {
      // The listed request must still be the submission the reaper waits on.
      if (l.fd == req->cb.aio_fildes && l.prio <= prio && l.req->seq == l.seq &&
          l.req->state == Request::State::kInProgress) {
        return;
      }
    }
  }
#else
  (void)req;
  (void)force;
#endif
  wake_pending_ = true;
  sentinel_->Fire();
}

Engine::Item Engine::MakeItem(Request* req, bool hold) const {
  return Item{req,        nullptr, req->seq.load(), req->cb.aio_fildes, req->EffectivePrio(),
              req->order, hold};
}

void Engine::Watch(Request* req, bool hold) {
  AIO_ASSERT(AssertJsThread());
  AIO_ASSERT(req->on_live);
  req->refs++;
  if (hold) Hold();
  std::lock_guard<std::mutex> lock(mu_);
  incoming_.push_back(MakeItem(req, hold));
  WakeLocked(req, false);
}

void Engine::WatchAll(const std::vector<Request*>& reqs) {
  if (reqs.empty()) return;
  AIO_ASSERT(AssertJsThread());
  for (Request* r : reqs) {
    AIO_ASSERT(r->on_live);
    r->refs++;
    Hold();
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (Request* r : reqs) {
    incoming_.push_back(MakeItem(r, true));
    WakeLocked(r, false);
  }
}

bool Engine::CanDefer() {
#ifdef __GLIBC__
  return true;
#else
  return false;
#endif
}

bool Engine::Defer(Request* req) {
  deferred_.push_back(req);
  return deferred_.size() == 1;
}

void Engine::Flush() {
#ifdef __GLIBC__
  if (deferred_.empty()) return;
  std::vector<Request*> batch;
  batch.swap(deferred_);
  bool refused = false;
  struct sigevent none {};
  none.sigev_notify = SIGEV_NONE;
  for (size_t at = 0; at < batch.size(); at += kFlushChunk) {
    size_t n = std::min(kFlushChunk, batch.size() - at);
    flush_list_.clear();
    for (size_t i = at; i < at + n; i++) {
      // glibc stores EINPROGRESS in every entry it enqueues, under its lock,
      // before lio_listio() returns, and never stores -1 as a status: still
      // -1 afterwards means the entry was not enqueued.
      batch[i]->cb.__error_code = -1;
      flush_list_.push_back(&batch[i]->cb);
    }
    int rc = lio_listio(LIO_NOWAIT, flush_list_.data(), static_cast<int>(n), &none);
    int err = rc == 0 ? 0 : errno;
    for (size_t i = at; i < at + n; i++) {
      Request* r = batch[i];
      if (__atomic_load_n(&r->cb.__error_code, __ATOMIC_ACQUIRE) == -1) {
        refused = true;
        // Refused (out of memory in libc): it completes with that error;
        // the reaper reports it like any completion.
        r->cb.__return_value = -1;
        __atomic_store_n(&r->cb.__error_code, err == 0 || err == EIO ? EAGAIN : err,
                         __ATOMIC_RELEASE);
      }
    }
  }
  WatchAll(batch);
  // A refused entry completes out of its descriptor's queue order.
  if (refused) Kick();
#endif
}

void Engine::AddSuspend(SuspendWait* wait) {
  AIO_ASSERT(AssertJsThread());
  for (Request* r : wait->list) r->refs++;
  Hold();
  std::lock_guard<std::mutex> lock(mu_);
  incoming_.push_back(Item{nullptr, wait, 0, -1, 0, 0, true});
  WakeLocked(nullptr, true);
}

void Engine::Kick() {
  if (!reaper_.joinable()) return;
  std::lock_guard<std::mutex> lock(mu_);
  kick_pending_ = true;
  WakeLocked(nullptr, true);
}

void Engine::Run() {
  // Signals belong to the JavaScript thread (SIGEV_SIGNAL completions
  // included); the reaper must never take one.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);

  Sentinel* s = sentinel_;
  std::unordered_map<int, Group> groups;
  std::vector<Item> waits;
  std::vector<Item> done;
  std::vector<Item> fresh;
  std::vector<const struct aiocb*> list;
  std::vector<Listed> listed;
  bool armed = false;
  auto last_full_scan = std::chrono::steady_clock::now();

  // A watched request is finished, or stale: JavaScript already observed
  // that submission (and may have submitted the block again).
  auto finished = [](const Item& it) {
    return it.req->seq.load(std::memory_order_relaxed) != it.seq || !Running(&it.req->cb);
  };

  for (;;) {
    bool full_scan;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
      fresh.swap(incoming_);
      full_scan = kick_pending_;
      kick_pending_ = false;
    }
    // Now and then look at everything: a request can complete out of its
    // descriptor's queue order without this engine being told (another
    // environment's aio_cancel(fd, NULL) on a shared descriptor).
    auto scan_now = std::chrono::steady_clock::now();
    if (scan_now - last_full_scan >= kBackstop) full_scan = true;
    if (full_scan) last_full_scan = scan_now;
    for (const Item& it : fresh) {
      if (it.req == nullptr) {
        waits.push_back(it);
        continue;
      }
      Group& g = groups[it.fd];
      if (!g.items.empty() && g.items.front().prio != it.prio) g.mixed = true;
      // Oldest first; a request watched late (collected while in flight)
      // goes back to its place.
      auto pos = g.items.end();
      while (pos != g.items.begin() && std::prev(pos)->order > it.order) --pos;
      g.items.insert(pos, it);
    }
    fresh.clear();

    done.clear();
    for (auto gi = groups.begin(); gi != groups.end();) {
      Group& g = gi->second;
      if (full_scan || g.mixed) {
        auto keep = std::remove_if(g.items.begin(), g.items.end(), [&](const Item& it) {
          if (!finished(it)) return false;
          done.push_back(it);
          return true;
        });
        g.items.erase(keep, g.items.end());
        g.mixed = false;
        for (const Item& it : g.items) {
          if (it.prio != g.items.front().prio) g.mixed = true;
        }
      } else {
        // One effective priority: glibc completes them oldest first.
        while (!g.items.empty() && finished(g.items.front())) {
          done.push_back(g.items.front());
          g.items.pop_front();
        }
      }
      if (g.items.empty()) {
        gi = groups.erase(gi);
      } else {
        ++gi;
      }
    }

    auto now = std::chrono::steady_clock::now();
    bool has_deadline = false;
    std::chrono::steady_clock::time_point next_deadline;
    auto wkeep = std::remove_if(waits.begin(), waits.end(), [&](const Item& it) {
      SuspendWait* w = it.wait;
      for (Request* r : w->list) {
        if (!Running(&r->cb)) {
          w->result = 0;
          done.push_back(it);
          return true;
        }
      }
      if (w->has_deadline) {
        if (w->deadline <= now) {
          w->result = EAGAIN;
          done.push_back(it);
          return true;
        }
        if (!has_deadline || w->deadline < next_deadline) {
          next_deadline = w->deadline;
          has_deadline = true;
        }
      }
      return false;
    });
    waits.erase(wkeep, waits.end());

    if (!done.empty()) {
      bool was_empty;
      {
        std::lock_guard<std::mutex> lock(mu_);
        was_empty = completed_.empty();
        completed_.insert(completed_.end(), done.begin(), done.end());
      }
      // One call per drain: while JavaScript has not taken the batch, later
      // completions join it.
      if (was_empty) tsfn_.NonBlockingCall();
    }

    list.clear();
    listed.clear();
    bool left_out = false;
    for (auto& [fd, g] : groups) {
      if (list.size() >= kMaxList) {
        left_out = true;
        break;
      }
      const Item& first = g.items.front();
      listed.push_back(Listed{fd, first.prio, first.req, first.seq});
      list.push_back(&first.req->cb);
      if (g.mixed) {
        // glibc may run a more urgent, newer request next, and may complete
        // a mix of priorities in an order no single listing covers.
        const Item* urgent = &first;
        for (const Item& it : g.items) {
          if (it.prio < urgent->prio) urgent = &it;
        }
        if (urgent != &first) {
          listed.push_back(Listed{fd, urgent->prio, urgent->req, urgent->seq});
          list.push_back(&urgent->req->cb);
        }
        left_out = true;
      }
    }
    for (const Item& it : waits) {
      for (Request* r : it.wait->list) {
        if (list.size() >= kMaxList) {
          left_out = true;
          break;
        }
        list.push_back(&r->cb);
      }
    }

    if (!armed) armed = s->Arm();
    if (armed) list.push_back(s->cb());
    std::chrono::nanoseconds timeout = kBackstop;
    // Unarmed (libc refused the sentinel): nothing can wake the reaper.
    if (left_out || !armed) timeout = kLeftOutPoll;
    if (has_deadline) {
      timeout = std::min<std::chrono::nanoseconds>(
          timeout, next_deadline - std::chrono::steady_clock::now());
    }

    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || !incoming_.empty() || kick_pending_) continue;
      sleeping_ = armed;
      sleep_list_ = listed;
    }
    SleepOn(list, timeout);
    {
      std::lock_guard<std::mutex> lock(mu_);
      sleeping_ = false;
      // A fire happens under mu_ and completes the sentinel before it
      // returns, so it is visible here.
      if (armed && !s->Pending()) {
        s->Reset();
        armed = false;
        wake_pending_ = false;
      }
    }
  }

  bool stuck = !s->Disarm();
  std::lock_guard<std::mutex> lock(mu_);
  sentinel_stuck_ = stuck;
  // Hand what the reaper still holds back for teardown.
  for (auto& [fd, g] : groups) incoming_.insert(incoming_.end(), g.items.begin(), g.items.end());
  incoming_.insert(incoming_.end(), waits.begin(), waits.end());
}

void Engine::CallJs(Napi::Env env, Napi::Function fn, Engine* self, void*) {
  if (env == nullptr || self == nullptr || self->stopped_) return;
  Napi::HandleScope scope(env);
  self->Deliver(env, fn);
}

void Engine::Deliver(Napi::Env env, Napi::Function dispatcher) {
  AIO_ASSERT(AssertJsThread());
  {
    std::lock_guard<std::mutex> lock(mu_);
    draining_.swap(completed_);
  }
  if (draining_.empty()) return;

  if (records_.IsEmpty() || records_cap_ < draining_.size()) {
    records_cap_ = std::max<size_t>(256, draining_.size() * 2);
    records_ = Napi::Persistent(Napi::Float64Array::New(env, records_cap_ * 4));
    records_unsent_ = true;
  }
  Napi::Float64Array records = records_.Value();
  double* rec = records.Data();
  size_t n = 0;

  for (const Item& it : draining_) {
    if (it.req != nullptr) {
      Request* r = it.req;
      // A stale seq means JavaScript already observed that submission (by
      // polling) and may have submitted again. The item's count keeps r
      // alive through TryClaim().
      if (r->seq == it.seq && r->TryClaim() && r->wrapped && r->notify == Notify::kThread) {
        rec[n * 4] = kOpRecord;
        rec[n * 4 + 1] = r->slot;
        rec[n * 4 + 2] = static_cast<double>(r->ret);
        rec[n * 4 + 3] = r->err;
        n++;
      }
      r->Unref();
    } else {
      SuspendWait* w = it.wait;
      for (Request* r : w->list) r->Unref();
      rec[n * 4] = kSuspendRecord;
      rec[n * 4 + 1] = w->slot;
      rec[n * 4 + 2] = w->result;
      rec[n * 4 + 3] = 0;
      n++;
      delete w;
    }
    if (it.held) Release();
  }
  draining_.clear();
  if (n == 0) return;

  if (records_unsent_) {
    records_unsent_ = false;
    dispatcher.Call({Napi::Number::New(env, static_cast<double>(n)), records});
  } else {
    dispatcher.Call({Napi::Number::New(env, static_cast<double>(n))});
  }
}

bool Engine::KeepSignalHandled(int signo) {
  AIO_ASSERT(AssertJsThread());
  if (!IsStandardSignal(signo)) return true;
  if (signal_handles_.count(signo) != 0) return true;
  uv_loop_t* loop = nullptr;
  if (env_ == nullptr || stopped_ || napi_get_uv_event_loop(env_, &loop) != napi_ok ||
      loop != uv_default_loop()) {
    return false;
  }
  auto* h = new uv_signal_t();
  if (uv_signal_init(loop, h) != 0) {
    delete h;
    return false;
  }
  if (uv_signal_start(
          h, [](uv_signal_t*, int) {}, signo) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(h),
             [](uv_handle_t* x) { delete reinterpret_cast<uv_signal_t*>(x); });
    return false;
  }
  uv_unref(reinterpret_cast<uv_handle_t*>(h));
  signal_handles_.emplace(signo, h);
  return true;
}

size_t Engine::DrainWrites(std::chrono::milliseconds timeout) {
  AIO_ASSERT(AssertJsThread());
  if (stopped_) return 0;
  Flush();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<const struct aiocb*> list;
  for (;;) {
    list.clear();
    size_t pending = 0;
    for (auto& [fd, l] : live_) {
      for (Request* r = l.head; r != nullptr; r = r->fd_next) {
        if (r->op == OpKind::kRead || !Running(&r->cb)) continue;
        pending++;
        if (list.size() < kMaxList) list.push_back(&r->cb);
      }
    }
    if (pending == 0 || std::chrono::steady_clock::now() >= deadline) return pending;
    SleepOn(list, std::min<std::chrono::nanoseconds>(std::chrono::milliseconds(50),
                                                     deadline - std::chrono::steady_clock::now()));
  }
}

void Engine::Shutdown() {
  if (stopped_) return;
  AIO_ASSERT(AssertJsThread());
  Flush();
  // 1. Cancel what this environment has queued. Running requests, and any
  //    that may be a descriptor's head (see Cancel()), finish on their own;
  //    another environment's requests may wait behind ours on a shared fd.
  //    Newest first on each descriptor, so each one still sees the older
  //    ones that keep it safely queued (each check stops at the first).
  std::vector<int> fds;
  fds.reserve(live_.size());
  for (auto& [fd, l] : live_) fds.push_back(fd);
  for (int fd : fds) PruneFinished(fd);
  std::vector<Request*> newest_first;
  newest_first.reserve(live_count_);
  for (auto& [fd, l] : live_) {
    for (Request* r = l.tail; r != nullptr; r = r->fd_prev) newest_first.push_back(r);
  }
  for (Request* r : newest_first) {
    // Cancel() may requeue later ones, never free any: each is on the
    // live list, which holds a count.
    if (r->on_live && Running(&r->cb)) Cancel(r);
  }
  // 1b. Node closed this environment's signal listeners before running the
  //     cleanup hooks: a signal-notified completion from here on must not
  //     kill the process.
  for (auto& [fd, l] : live_) {
    for (Request* r = l.head; r != nullptr; r = r->fd_next) {
      if (r->notify == Notify::kSignal) ShieldSignal(r->signo);
    }
  }
  // 2. Wait, bounded, for what is still running.
  auto deadline = std::chrono::steady_clock::now() + kTeardownWait;
  std::vector<const struct aiocb*> list;
  for (;;) {
    list.clear();
    for (auto& [fd, l] : live_) {
      for (Request* r = l.head; r != nullptr && list.size() < kMaxList; r = r->fd_next) {
        if (Running(&r->cb)) list.push_back(&r->cb);
      }
    }
    if (list.empty() || std::chrono::steady_clock::now() >= deadline) break;
    SleepOn(list, std::chrono::milliseconds(50));
  }
  // 2b. What is still in progress will run after this environment and its
  //     buffers are gone. A queued request made zero-length moves no bytes
  //     when it finally runs (cancelling it could strand other environments'
  //     requests behind it, see Cancel()); one already inside its system call
  //     keeps the pointers it has (a read on a pipe nobody writes).
  for (auto& [fd, l] : live_) {
    for (Request* r = l.head; r != nullptr; r = r->fd_next) {
      if (Running(&r->cb)) __atomic_store_n(&r->cb.aio_nbytes, 0, __ATOMIC_SEQ_CST);
    }
  }
  // 3. Stop the reaper. It takes its sentinel out of libc on the way out.
  if (reaper_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      if (sleeping_ && !wake_pending_) {
        wake_pending_ = true;
        sentinel_->Fire();
      }
    }
    reaper_.join();
  }
  stopped_ = true;

  // 4. Settle the books. Every watch and wait gives its count back; the
  //    live list keeps those libc still holds, which are never freed.
  std::vector<Item> rest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rest.swap(incoming_);
    rest.insert(rest.end(), completed_.begin(), completed_.end());
    completed_.clear();
  }
  // A delivery cut short by the teardown (JavaScript could no longer run)
  // leaves its batch here.
  rest.insert(rest.end(), draining_.begin(), draining_.end());
  draining_.clear();
  for (const Item& it : rest) {
    if (it.req != nullptr) {
      it.req->Unref();
    } else {
      for (Request* r : it.wait->list) r->Unref();
      delete it.wait;
    }
  }
  std::vector<Request*> remaining;
  for (auto& [fd, l] : live_) {
    for (Request* r = l.head; r != nullptr; r = r->fd_next) remaining.push_back(r);
  }
  for (Request* r : remaining) r->TryClaim();
  records_.Reset();
  if (env_ != nullptr) tsfn_.Abort();
}

}  // namespace posix_aio
