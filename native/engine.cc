#include "engine.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

namespace posix_aio {

namespace {

// Per aio_suspend() call. glibc registers a wait entry on each listed request
// and finds each by a linear walk of its descriptor's queue, all under its
// global AIO lock, so the list is kept short: the first request of each
// descriptor (in submission order the one glibc runs next) and a cap
// overall. Whatever is left out is still scanned on every wake-up, and a
// timeout bounds how long it can go unnoticed.
constexpr size_t kPerFd = 1;
constexpr size_t kMaxList = 256;
constexpr auto kLeftOutPoll = std::chrono::milliseconds(20);
// Longest single sleep. After it the sentinel's libc worker is handed back
// to glibc's pool (it is re-armed at the next sleep), so long waits by many
// environments cannot hold every worker on a sentinel.
constexpr auto kMaxSleep = std::chrono::milliseconds(100);
// How long teardown waits for requests libc cannot cancel (a read on a pipe
// nobody writes never ends).
constexpr auto kTeardownWait = std::chrono::milliseconds(2000);
// Most aiocbs per lio_listio(): glibc puts per-entry arrays on the stack.
constexpr size_t kFlushChunk = 1024;

void SleepOn(const std::vector<const struct aiocb*>& list, std::chrono::nanoseconds timeout) {
  auto ns = std::max<int64_t>(0, timeout.count());
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(ns / 1000000000);
  ts.tv_nsec = static_cast<long>(ns % 1000000000);
  // EINTR and EAGAIN both just mean "look again".
  aio_suspend(list.data(), static_cast<int>(list.size()), &ts);
}

void Poke(int fd) {
  uint64_t one = 1;
  ssize_t ignored = write(fd, &one, sizeof one);
  (void)ignored;
}

}  // namespace

Engine::~Engine() {
  if (sentinel_ != nullptr && !sentinel_stuck_) {
    close(sentinel_->fd);
    delete sentinel_;
  }
}

void Engine::Init(Napi::Env env, Napi::Function dispatcher) {
  env_ = env;
  tsfn_ = Tsfn::New(env, dispatcher, "posix-aio:completions", 0, 1, this);
  // Idle, the addon must not keep the event loop alive.
  tsfn_.Unref(env);
}

bool Engine::EnsureReaper() {
  if (reaper_.joinable()) return true;
  if (stopped_) {
    errno = EBADF;
    return false;
  }
  if (sentinel_ == nullptr) {
    int fd = eventfd(0, EFD_CLOEXEC);
    if (fd < 0) return false;
    sentinel_ = new Sentinel();
    sentinel_->fd = fd;
    sentinel_->cb.aio_fildes = fd;
    sentinel_->cb.aio_buf = &sentinel_->value;
    sentinel_->cb.aio_nbytes = sizeof sentinel_->value;
    sentinel_->cb.aio_sigevent.sigev_notify = SIGEV_NONE;
  }
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
  if (--active_ == 0 && tsfn_refd_ && !stopped_) {
    tsfn_.Unref(env_);
    tsfn_refd_ = false;
  }
}

void Engine::AddLive(Request* req) {
  req->order = ++next_order_;
  req->live_prev = nullptr;
  req->live_next = live_head_;
  if (live_head_ != nullptr) live_head_->live_prev = req;
  live_head_ = req;
}

void Engine::RemoveLive(Request* req) {
  if (req->live_prev != nullptr) {
    req->live_prev->live_next = req->live_next;
  } else if (live_head_ == req) {
    live_head_ = req->live_next;
  }
  if (req->live_next != nullptr) req->live_next->live_prev = req->live_prev;
  req->live_prev = req->live_next = nullptr;
}

bool Engine::SurelyQueued(const Request* req) const {
  // Some older request of ours on the descriptor, at least as urgent, is
  // still in progress: glibc keeps it ahead of req, so req is not the head.
  for (const Request* x = live_head_; x != nullptr; x = x->live_next) {
    if (x != req && x->cb.aio_fildes == req->cb.aio_fildes && x->order < req->order &&
        x->prio <= req->prio && aio_error(&x->cb) == EINPROGRESS) {
      return true;
    }
  }
  return false;
}

int Engine::Cancel(Request* req) {
  Flush();
  bool checked = req->state == Request::State::kInProgress && aio_error(&req->cb) == EINPROGRESS;
  if (checked && !SurelyQueued(req)) return AIO_NOTCANCELED;
  int rc = aio_cancel(req->cb.aio_fildes, &req->cb);
  if (rc < 0) return -errno;
  // The older request that made req look safely queued may have finished
  // just before glibc took our cancel; if none is in progress now, req may
  // have been the head, and what queued behind it may be stranded.
  if (rc == AIO_CANCELED && checked && !SurelyQueued(req)) RequeueAfter(req);
  // A cancelled request completes at once; make the reaper look now.
  if (rc == AIO_CANCELED && req->notify == Notify::kThread) Kick();
  return rc;
}

void Engine::RequeueAfter(const Request* req) {
  std::vector<Request*> behind;
  for (Request* x = live_head_; x != nullptr; x = x->live_next) {
    if (x->cb.aio_fildes == req->cb.aio_fildes && x->order > req->order &&
        x->state == Request::State::kInProgress && aio_error(&x->cb) == EINPROGRESS) {
      behind.push_back(x);
    }
  }
  std::sort(behind.begin(), behind.end(),
            [](const Request* a, const Request* b) { return a->order < b->order; });
  // First take every one of them out of glibc's queue, then submit them
  // again: a request submitted while the stranded chain still holds others
  // would be appended to that chain and stranded with it.
  std::vector<Request*> again;
  for (Request* x : behind) {
    int rc = aio_cancel(x->cb.aio_fildes, &x->cb);
    // Running: glibc's worker has the descriptor's queue again.
    if (rc == AIO_NOTCANCELED) break;
    if (rc == AIO_CANCELED) again.push_back(x);
  }
  for (Request* x : again) {
    // A new seq makes the reaper's view of the cancelled submission stale;
    // the same operation goes in again at the back of the descriptor's queue.
    x->seq++;
    x->order = ++next_order_;
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
      x->cb.__error_code = errno;
      x->cb.__return_value = -1;
    }
#else
    (void)sub;
#endif
    if (x->notify == Notify::kThread) Watch(x);
  }
}

// Caller holds mu_ (JavaScript thread). An idle reaper (nothing to watch)
// waits on idle_cv_ and is notified; one in aio_suspend() is woken through
// the sentinel. The write is skipped when the reaper is awake (it drains
// incoming_ before it sleeps again) or already being woken, and on glibc
// when it sleeps on a request of the same descriptor that runs first: glibc
// runs one request per descriptor at a time, by priority then FIFO, so the
// new one cannot finish before that one wakes the reaper.
void Engine::WakeLocked(const Request* req, bool force) {
  if (idle_) {
    idle_cv_.notify_one();
    return;
  }
  if (wake_pending_ || (!sleeping_ && !force)) return;
#ifdef __GLIBC__
  if (!force && req != nullptr) {
    for (const Listed& l : sleep_list_) {
      // The listed request must still be the submission the reaper waits on.
      if (l.fd == req->cb.aio_fildes && l.prio <= req->prio && l.req->seq == l.seq &&
          l.req->state == Request::State::kInProgress) {
        return;
      }
    }
  }
#else
  (void)req;
#endif
  wake_pending_ = true;
  // The eventfd counter cannot overflow: each write is matched by the
  // sentinel's read before wake_pending_ is cleared.
  Poke(sentinel_->fd);
}

void Engine::Watch(Request* req, bool hold) {
  req->refs++;
  if (hold) Hold();
  std::lock_guard<std::mutex> lock(mu_);
  incoming_.push_back(Item{req, nullptr, req->seq, req->cb.aio_fildes, req->prio, hold});
  WakeLocked(req, false);
}

void Engine::WatchAll(const std::vector<Request*>& reqs) {
  if (reqs.empty()) return;
  for (Request* r : reqs) {
    r->refs++;
    Hold();
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (Request* r : reqs) {
    incoming_.push_back(Item{r, nullptr, r->seq, r->cb.aio_fildes, r->prio, true});
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
  struct sigevent none {};
  none.sigev_notify = SIGEV_NONE;
  for (size_t at = 0; at < batch.size(); at += kFlushChunk) {
    size_t n = std::min(kFlushChunk, batch.size() - at);
    flush_list_.clear();
    for (size_t i = at; i < at + n; i++) {
      // glibc never stores -1 as a status: still -1 afterwards means the
      // entry was not enqueued.
      batch[i]->cb.__error_code = -1;
      flush_list_.push_back(&batch[i]->cb);
    }
    int rc = lio_listio(LIO_NOWAIT, flush_list_.data(), static_cast<int>(n), &none);
    int err = rc == 0 ? 0 : errno;
    for (size_t i = at; i < at + n; i++) {
      Request* r = batch[i];
      if (r->cb.__error_code == -1) {
        // Refused (out of memory in libc): it completes with that error;
        // the reaper reports it like any completion.
        r->cb.__error_code = err == 0 || err == EIO ? EAGAIN : err;
        r->cb.__return_value = -1;
      }
    }
  }
  WatchAll(batch);
#endif
}

void Engine::AddSuspend(SuspendWait* wait) {
  for (Request* r : wait->list) r->refs++;
  Hold();
  std::lock_guard<std::mutex> lock(mu_);
  incoming_.push_back(Item{nullptr, wait, 0, -1, 0, true});
  WakeLocked(nullptr, true);
}

void Engine::Kick() {
  if (!reaper_.joinable()) return;
  std::lock_guard<std::mutex> lock(mu_);
  WakeLocked(nullptr, true);
}

// Reaper thread. Makes sure no libc worker stays blocked on the sentinel:
// cancels it while queued, completes it by writing the eventfd while it
// runs. Leaves `armed` true only if libc still holds it.
void Engine::ReleaseSentinel(bool& armed) {
  if (!armed) return;
  Sentinel* s = sentinel_;
  if (aio_error(&s->cb) == EINPROGRESS && aio_cancel(s->fd, &s->cb) != AIO_CANCELED) {
    std::vector<const struct aiocb*> one(1, &s->cb);
    for (int i = 0; i < 20 && aio_error(&s->cb) == EINPROGRESS; i++) {
      Poke(s->fd);
      SleepOn(one, std::chrono::milliseconds(10));
    }
  }
  if (aio_error(&s->cb) == EINPROGRESS) return;
  aio_return(&s->cb);
  armed = false;
  std::lock_guard<std::mutex> lock(mu_);
  wake_pending_ = false;
}

void Engine::Run() {
  // Signals belong to the JavaScript thread (SIGEV_SIGNAL completions
  // included); the reaper must never take one.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);

  Sentinel* s = sentinel_;
  std::vector<Item> watch;
  std::vector<Item> waits;
  std::vector<Item> done;
  std::vector<const struct aiocb*> list;
  std::vector<Listed> listed;
  std::vector<std::pair<int, size_t>> fd_count;  // fd, requests listed
  bool armed = false;

  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
      for (const Item& it : incoming_) {
        (it.req != nullptr ? watch : waits).push_back(it);
      }
      incoming_.clear();
    }

    // Every watched request is checked on each wake-up: aio_error() only
    // reads a field, and a compaction keeps submission order.
    done.clear();
    auto keep = std::remove_if(watch.begin(), watch.end(), [&](const Item& it) {
      if (aio_error(&it.req->cb) == EINPROGRESS) return false;
      done.push_back(it);
      return true;
    });
    watch.erase(keep, watch.end());

    auto now = std::chrono::steady_clock::now();
    bool has_deadline = false;
    std::chrono::steady_clock::time_point next_deadline;
    auto wkeep = std::remove_if(waits.begin(), waits.end(), [&](const Item& it) {
      SuspendWait* w = it.wait;
      for (Request* r : w->list) {
        if (aio_error(&r->cb) != EINPROGRESS) {
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

    if (watch.empty() && waits.empty()) {
      // Nothing in flight: give the sentinel's worker back and wait on a
      // condition variable, which wakes faster than the sentinel anyway.
      ReleaseSentinel(armed);
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_ || !incoming_.empty()) continue;
      idle_ = true;
      idle_cv_.wait(lock, [this] { return stopping_ || !incoming_.empty(); });
      idle_ = false;
      continue;
    }

    list.clear();
    listed.clear();
    fd_count.clear();
    bool left_out = false;
    for (const Item& it : watch) {
      size_t k = 0;
      while (k < fd_count.size() && fd_count[k].first != it.fd) k++;
      if (k == fd_count.size()) fd_count.emplace_back(it.fd, 0);
      if (fd_count[k].second >= kPerFd || list.size() >= kMaxList) {
        left_out = true;
        continue;
      }
      fd_count[k].second++;
      listed.push_back(Listed{it.fd, it.prio, it.req, it.seq});
      list.push_back(&it.req->cb);
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

    if (!armed) armed = aio_read(&s->cb) == 0;
    if (armed) list.push_back(&s->cb);
    std::chrono::nanoseconds timeout = kMaxSleep;
    if (left_out || !armed) timeout = kLeftOutPoll;
    if (has_deadline) {
      timeout = std::min<std::chrono::nanoseconds>(
          timeout, next_deadline - std::chrono::steady_clock::now());
    }

    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || !incoming_.empty()) continue;
      sleeping_ = true;
      sleep_list_ = listed;
    }
    auto slept = std::chrono::steady_clock::now();
    SleepOn(list, timeout);
    bool sentinel_done = armed && aio_error(&s->cb) != EINPROGRESS;
    {
      std::lock_guard<std::mutex> lock(mu_);
      sleeping_ = false;
      if (sentinel_done || !armed) wake_pending_ = false;
    }
    if (sentinel_done) {
      aio_return(&s->cb);
      armed = false;
    } else if (armed && std::chrono::steady_clock::now() - slept >= kMaxSleep) {
      ReleaseSentinel(armed);
    }
  }

  ReleaseSentinel(armed);
  std::lock_guard<std::mutex> lock(mu_);
  sentinel_stuck_ = armed;
  // Hand what the reaper still holds back for teardown.
  incoming_.insert(incoming_.end(), watch.begin(), watch.end());
  incoming_.insert(incoming_.end(), waits.begin(), waits.end());
}

void Engine::CallJs(Napi::Env env, Napi::Function fn, Engine* self, void*) {
  if (env == nullptr || self == nullptr || self->stopped_) return;
  Napi::HandleScope scope(env);
  self->Deliver(env, fn);
}

void Engine::Deliver(Napi::Env env, Napi::Function dispatcher) {
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
      // polling) and may have submitted again.
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

void Engine::Shutdown() {
  if (stopped_) return;
  Flush();
  // 1. Cancel what this environment has queued. Running requests, and any
  //    that may be a descriptor's head (see Cancel()), finish on their own;
  //    another environment's requests may wait behind ours on a shared fd.
  //    Newest first, so each one still sees the older ones that keep it
  //    safely queued.
  for (Request* r = live_head_; r != nullptr; r = r->live_next) {
    if (aio_error(&r->cb) == EINPROGRESS) Cancel(r);
  }
  // 2. Wait, bounded, for what is still running.
  auto deadline = std::chrono::steady_clock::now() + kTeardownWait;
  std::vector<const struct aiocb*> list;
  for (;;) {
    list.clear();
    for (Request* r = live_head_; r != nullptr && list.size() < kMaxList; r = r->live_next) {
      if (aio_error(&r->cb) == EINPROGRESS) list.push_back(&r->cb);
    }
    if (list.empty() || std::chrono::steady_clock::now() >= deadline) break;
    SleepOn(list, std::chrono::milliseconds(50));
  }
  // 2b. What is still in progress will run after this environment and its
  //     buffers are gone. A queued request made zero-length moves no bytes
  //     when it finally runs (cancelling it could strand other environments'
  //     requests behind it, see Cancel()); one already inside its system call
  //     keeps the pointers it has (a read on a pipe nobody writes).
  for (Request* r = live_head_; r != nullptr; r = r->live_next) {
    if (aio_error(&r->cb) == EINPROGRESS) __atomic_store_n(&r->cb.aio_nbytes, 0, __ATOMIC_SEQ_CST);
  }
  // 3. Stop the reaper. It releases its sentinel on the way out; sleeps are
  //    bounded, so the join is too.
  if (reaper_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      idle_cv_.notify_one();
    }
    Poke(sentinel_->fd);
    reaper_.join();
  }
  stopped_ = true;

  // 4. Settle the books. Requests libc has finished are released; any still
  //    running is left allocated (libc keeps its pointer) and never freed.
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
      if (aio_error(&it.req->cb) != EINPROGRESS) it.req->Unref();
    } else {
      for (Request* r : it.wait->list) {
        if (aio_error(&r->cb) != EINPROGRESS) r->Unref();
      }
      delete it.wait;
    }
  }
  for (Request* r = live_head_; r != nullptr;) {
    Request* next = r->live_next;
    r->TryClaim();
    r = next;
  }
  records_.Reset();
  if (env_ != nullptr) tsfn_.Abort();
}

}  // namespace posix_aio
