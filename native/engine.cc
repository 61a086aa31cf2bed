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
// Most aiocbs per lio_listio() or blocking aio_suspend(): glibc puts
// per-entry arrays on the calling thread's stack.
constexpr size_t kChunk = 1024;

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

// The status glibc would leave, for a request the engine completes itself
// (refused at submission, or cancelled while held). Off glibc nothing is
// held and a refused submission is reported by its call.
void SetStatus(Request* r, int err) {
#ifdef __GLIBC__
  __atomic_store_n(&r->cb.__return_value, err == 0 ? 0 : -1, __ATOMIC_RELAXED);
  __atomic_store_n(&r->cb.__error_code, err, __ATOMIC_RELEASE);
#else
  (void)r;
  (void)err;
#endif
}

// Intrusive list of Requests through fd_prev/fd_next.
void PushBack(Request*& head, Request*& tail, Request* r) {
  r->fd_next = nullptr;
  r->fd_prev = tail;
  if (tail != nullptr) tail->fd_next = r;
  tail = r;
  if (head == nullptr) head = r;
}

void Remove(Request*& head, Request*& tail, Request* r) {
  if (r->fd_prev != nullptr) {
    r->fd_prev->fd_next = r->fd_next;
  } else {
    head = r->fd_next;
  }
  if (r->fd_next != nullptr) {
    r->fd_next->fd_prev = r->fd_prev;
  } else {
    tail = r->fd_prev;
  }
  r->fd_prev = r->fd_next = nullptr;
}

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

uint32_t Engine::Register(Request* req) {
  AIO_ASSERT(AssertJsThread());
  if (!free_ids_.empty()) {
    uint32_t id = free_ids_.back();
    free_ids_.pop_back();
    ids_[id] = req;
    return id;
  }
  ids_.push_back(req);
  return static_cast<uint32_t>(ids_.size() - 1);
}

void Engine::Unregister(uint32_t id) {
  AIO_ASSERT(AssertJsThread());
  AIO_ASSERT(id != 0 && id < ids_.size() && ids_[id] != nullptr);
  ids_[id] = nullptr;
  free_ids_.push_back(id);
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
  if (req->held) {
    LinkHeld(l, req);
    return;
  }
  PushBack(l.head, l.tail, req);
  l.count++;
}

void Engine::LinkHeld(FdList& l, Request* req) {
  // glibc's order: effective priority, then submission. From the tail, so
  // the usual case (one priority) is a push at the back.
  int prio = req->EffectivePrio();
  Request* after = l.held_tail;
  while (after != nullptr && after->EffectivePrio() > prio) after = after->fd_prev;
  req->fd_prev = after;
  req->fd_next = after != nullptr ? after->fd_next : l.held_head;
  if (req->fd_next != nullptr) {
    req->fd_next->fd_prev = req;
  } else {
    l.held_tail = req;
  }
  if (after != nullptr) {
    after->fd_next = req;
  } else {
    l.held_head = req;
  }
}

void Engine::Unlink(Request* req) {
  auto it = live_.find(req->live_fd);
  AIO_ASSERT(it != live_.end());
  FdList& l = it->second;
  if (req->held) {
    Remove(l.held_head, l.held_tail, req);
  } else {
    Remove(l.head, l.tail, req);
    AIO_ASSERT(l.count > 0);
    l.count--;
  }
  // A descriptor listed in holding_ keeps its entry until PumpAll() drops it.
  if (l.head == nullptr && l.held_head == nullptr && !l.holding) live_.erase(it);
}

void Engine::AddLive(Request* req) {
  AIO_ASSERT(AssertJsThread());
  AIO_ASSERT(!req->on_live && req->refs >= 1 && !req->held);
  req->refs++;
  req->on_live = true;
  req->order = ++next_order_;
  req->live_fd = req->cb.aio_fildes;
  Link(req);
  live_count_++;
}

void Engine::RemoveLive(Request* req) {
  AIO_ASSERT(AssertJsThread());
  AIO_ASSERT(req->on_live && req->state != Request::State::kInProgress && !req->held);
  Unlink(req);
  req->on_live = false;
  live_count_--;
  req->Unref();
}

bool Engine::MustHold(int fd, bool bypass) {
  AIO_ASSERT(AssertJsThread());
#ifdef __GLIBC__
  if (bypass) return false;
  auto it = live_.find(fd);
  if (it == live_.end()) return false;
  if (it->second.held_head != nullptr) return true;
  // Held requests are pumped through reaper watches: no reaper, no window.
  return it->second.count >= kWindow && EnsureReaper();
#else
  (void)fd;
  (void)bypass;
  return false;
#endif
}

bool Engine::Holding(int fd) const {
  auto it = live_.find(fd);
  return it != live_.end() && it->second.held_head != nullptr;
}

void Engine::AddHeld(Request* req) {
  AIO_ASSERT(AssertJsThread());
  AIO_ASSERT(!req->on_live && req->refs >= 1 && req->state == Request::State::kInProgress);
  int fd = req->cb.aio_fildes;
  FdList* l = &live_[fd];
  if (l->held_head == nullptr) {
    // From now on each completion on fd must reach a pump: what is
    // deferred goes to libc (watched), and what libc has is watched.
    Flush();
    WatchRunning(fd);
    l = &live_[fd];
    if (!l->holding) {
      l->holding = true;
      holding_.push_back(fd);
    }
  }
  if (req->op != OpKind::kFsync) {
    req->cb.aio_lio_opcode = req->op == OpKind::kRead ? LIO_READ : LIO_WRITE;
  }
  SetStatus(req, EINPROGRESS);
  req->refs++;
  req->on_live = true;
  req->held.store(true, std::memory_order_release);
  req->order = ++next_order_;
  req->live_fd = fd;
  LinkHeld(*l, req);
  live_count_++;
  if (req->notify == Notify::kThread && req->wrapped) {
    req->loop_ref = true;
    Hold();
  }
}

void Engine::WatchRunning(int fd) {
  auto it = live_.find(fd);
  if (it == live_.end()) return;
  for (Request* x = it->second.head; x != nullptr; x = x->fd_next) {
    if (x->watched_seq != x->seq && Running(&x->cb)) {
      Watch(x, x->notify == Notify::kThread && x->wrapped);
    }
  }
}

void Engine::PumpAll() {
  AIO_ASSERT(AssertJsThread());
  if (stopped_) return;
  for (size_t i = 0; i < holding_.size();) {
    int fd = holding_[i];
    Pump(fd);
    auto it = live_.find(fd);
    if (it != live_.end() && it->second.held_head != nullptr) {
      i++;
      continue;
    }
    if (it != live_.end()) {
      it->second.holding = false;
      if (it->second.head == nullptr) live_.erase(it);
    }
    holding_[i] = holding_.back();
    holding_.pop_back();
  }
}

void Engine::Pump(int fd) {
  // Whatever is deferred was submitted before the held requests.
  Flush();
  PruneFinished(fd);
  auto it = live_.find(fd);
  if (it == live_.end() || it->second.held_head == nullptr) return;
  FdList& l = it->second;
  size_t running = 0;
  for (Request* x = l.head; x != nullptr && running < kWindow; x = x->fd_next) {
    if (Running(&x->cb)) running++;
  }
  std::vector<Request*> moved;
  while (l.held_head != nullptr && running < kWindow) {
    Request* r = l.held_head;
    Remove(l.held_head, l.held_tail, r);
    r->order = ++next_order_;
    PushBack(l.head, l.tail, r);
    l.count++;
    running++;
    moved.push_back(r);
  }
  // In order: reads and writes go out together in lio_listio(), an fsync
  // alone after what precedes it. They stay `held` until libc has them, so
  // the reaper never takes a status written for the submission (the
  // not-enqueued marker) for a completion.
  bool refused = false;
  std::vector<Request*> batch;
  for (Request* r : moved) {
    if (r->op != OpKind::kFsync) {
      batch.push_back(r);
      continue;
    }
    refused |= SubmitBatch(batch);
    batch.clear();
    SubmitOne(r);
  }
  refused |= SubmitBatch(batch);
  // Each is watched, so its completion leads to the next pump.
  for (Request* r : moved) r->held = false;
  WatchAll(moved);
  for (Request* r : moved) {
    if (r->loop_ref) {
      r->loop_ref = false;
      Release();
    }
  }
  if (refused) Kick();
}

void Engine::CancelHeld(Request* req) {
  AIO_ASSERT(req->held && req->on_live);
  auto it = live_.find(req->live_fd);
  AIO_ASSERT(it != live_.end());
  FdList& l = it->second;
  // Completed by the engine: it joins the descriptor's finished requests,
  // and is claimed and delivered like one libc cancelled.
  SetStatus(req, ECANCELED);
  Remove(l.held_head, l.held_tail, req);
  req->held.store(false, std::memory_order_release);
  req->order = ++next_order_;
  PushBack(l.head, l.tail, req);
  l.count++;
  if (req->notify == Notify::kThread || !req->wrapped) {
    Watch(req, req->notify == Notify::kThread && req->wrapped);
  }
  if (req->loop_ref) {
    req->loop_ref = false;
    Release();
  }
  // glibc's aio_cancel() notifies each request it cancels: a signal-
  // notified one raises its signal. Not at teardown (nobody listens).
  if (req->notify == Notify::kSignal && !stopping_teardown_) {
    union sigval v;
    v.sival_int = req->sigval;
    sigqueue(getpid(), req->signo, v);
  }
}

size_t Engine::CancelHeldOn(int fd) {
  AIO_ASSERT(AssertJsThread());
  auto it = live_.find(fd);
  if (it == live_.end()) return 0;
  size_t n = 0;
  while (it->second.held_head != nullptr) {
    CancelHeld(it->second.held_head);
    n++;
  }
  if (n != 0) Kick();
  return n;
}

void Engine::WaitAll(const std::vector<Request*>& reqs) {
  AIO_ASSERT(AssertJsThread());
  std::vector<const struct aiocb*> list;
  for (;;) {
    if (!holding_.empty()) PumpAll();
    list.clear();
    bool pending = false;
    for (Request* r : reqs) {
      if (!Running(&r->cb)) continue;
      pending = true;
      if (!r->held && list.size() < kChunk) list.push_back(&r->cb);
    }
    if (!pending) return;
    if (list.empty()) {
      // Only held ones are left: wait for what runs ahead of them.
      for (int fd : holding_) {
        auto it = live_.find(fd);
        if (it == live_.end()) continue;
        for (Request* x = it->second.head; x != nullptr && list.size() < kChunk; x = x->fd_next) {
          if (Running(&x->cb)) list.push_back(&x->cb);
        }
      }
    }
    if (list.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } else {
      // Bounded, so that the windows are pumped while waiting.
      SleepOn(list, kLeftOutPoll);
    }
  }
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
  if (req->held) {
    // Never in libc: always cancellable, and no queue to strand.
    CancelHeld(req);
    Kick();
    return AIO_CANCELED;
  }
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
    bool watched = x->watched_seq == x->seq;
    // A new seq makes the reaper's view of the cancelled submission stale;
    // the same operation goes in again at the back of the descriptor's
    // queue, so it moves to the back of our list too (same live count).
    x->seq++;
    Unlink(x);
    x->order = ++next_order_;
    Link(x);
    SubmitOne(x);
    // Whoever watched the old submission now holds a stale seq: a request
    // JavaScript waits on, one whose wrapper was collected (nobody else
    // would ever claim it), or one watched to pump its descriptor's window,
    // is watched again.
    if (x->notify == Notify::kThread || !x->wrapped || watched) {
      Watch(x, x->notify == Notify::kThread && x->wrapped);
    }
  }
}

void Engine::SubmitOne(Request* x) {
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
  // Refused: completed with the submission's error, seen like any
  // completion.
  if (sub != 0) SetStatus(x, errno);
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
  AIO_ASSERT(req->on_live && !req->held);
  req->refs++;
  req->watched_seq = req->seq;
  if (hold) Hold();
  std::lock_guard<std::mutex> lock(mu_);
  incoming_.push_back(MakeItem(req, hold));
  WakeLocked(req, false);
}

void Engine::WatchAll(const std::vector<Request*>& reqs) {
  if (reqs.empty()) return;
  AIO_ASSERT(AssertJsThread());
  // The tick flush's batch: thread-notified reads and writes, and the
  // requests a pump submitted (any notification; only JavaScript-awaited
  // ones keep the event loop alive).
  for (Request* r : reqs) {
    AIO_ASSERT(r->on_live && !r->held);
    r->refs++;
    r->watched_seq = r->seq;
    if (r->notify == Notify::kThread && r->wrapped) Hold();
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (Request* r : reqs) {
    incoming_.push_back(MakeItem(r, r->notify == Notify::kThread && r->wrapped));
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
  bool refused = SubmitBatch(batch);
  WatchAll(batch);
  // A refused entry completes out of its descriptor's queue order.
  if (refused) Kick();
#endif
}

bool Engine::SubmitBatch(const std::vector<Request*>& batch) {
  bool refused = false;
#ifdef __GLIBC__
  struct sigevent none {};
  none.sigev_notify = SIGEV_NONE;
  for (size_t at = 0; at < batch.size(); at += kChunk) {
    size_t n = std::min(kChunk, batch.size() - at);
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
#else
  (void)batch;
#endif
  return refused;
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
        // A held block's status is the engine's until a pump has handed it
        // to libc (the not-enqueued marker is written while still held).
        if (r->held.load(std::memory_order_acquire)) continue;
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
        // A held block is not in libc: aio_suspend() would return at once.
        // It is watched once a pump submits it, which wakes this thread.
        if (r->held.load(std::memory_order_relaxed)) continue;
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
  // Room may have opened in the descriptors' windows.
  if (!holding_.empty()) PumpAll();
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
    // Held writes go to libc as the windows allow.
    if (!holding_.empty()) PumpAll();
    list.clear();
    size_t pending = 0;
    size_t held = 0;
    for (auto& [fd, l] : live_) {
      for (Request* r = l.head; r != nullptr; r = r->fd_next) {
        if (r->op == OpKind::kRead || !Running(&r->cb)) continue;
        pending++;
        if (list.size() < kMaxList) list.push_back(&r->cb);
      }
      for (Request* r = l.held_head; r != nullptr; r = r->fd_next) {
        if (r->op != OpKind::kRead) held++;
      }
    }
    pending += held;
    if (pending == 0 || std::chrono::steady_clock::now() >= deadline) return pending;
    if (held != 0) {
      // Writes wait behind reads in their windows: wake when any finishes.
      for (int fd : holding_) {
        auto it = live_.find(fd);
        if (it == live_.end()) continue;
        for (Request* r = it->second.head; r != nullptr && list.size() < kMaxList; r = r->fd_next) {
          if (r->op == OpKind::kRead && Running(&r->cb)) list.push_back(&r->cb);
        }
      }
    }
    auto wait = std::min<std::chrono::nanoseconds>(std::chrono::milliseconds(held != 0 ? 5 : 50),
                                                   deadline - std::chrono::steady_clock::now());
    if (list.empty()) {
      std::this_thread::sleep_for(wait);
    } else {
      SleepOn(list, wait);
    }
  }
}

void Engine::Shutdown() {
  if (stopped_) return;
  AIO_ASSERT(AssertJsThread());
  Flush();
  // 0. What the engine holds never reaches libc.
  stopping_teardown_ = true;
  std::vector<int> holding = holding_;
  for (int fd : holding) CancelHeldOn(fd);
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
  //     keeps the pointers it has: on a pipe, FIFO, socket or terminal (which
  //     can block for ever) that is the request's own memory (UseBounce),
  //     which stays allocated with it.
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
