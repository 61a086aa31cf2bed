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
// and finds each by a linear walk of its descriptor's queue, so the list is
// kept short: the first few requests of each descriptor (in submission order
// they are the ones glibc runs next) and a cap overall. Whatever is left out
// is still scanned on every wake-up, and a timeout bounds how long it can go
// unnoticed.
constexpr size_t kPerFd = 1;
constexpr size_t kMaxList = 256;
constexpr auto kLeftOutPoll = std::chrono::milliseconds(20);
// How long teardown waits for requests libc cannot cancel (a read on a pipe
// nobody writes never ends).
constexpr auto kTeardownWait = std::chrono::milliseconds(2000);

void SleepOn(const std::vector<const struct aiocb*>& list,
             std::chrono::nanoseconds timeout, bool bounded) {
  struct timespec ts;
  if (bounded) {
    auto ns = std::max<int64_t>(0, timeout.count());
    ts.tv_sec = static_cast<time_t>(ns / 1000000000);
    ts.tv_nsec = static_cast<long>(ns % 1000000000);
  }
  // EINTR and EAGAIN both just mean "look again".
  aio_suspend(list.data(), static_cast<int>(list.size()),
              bounded ? &ts : nullptr);
}

}  // namespace

Engine::~Engine() {
  if (wake_fd_ >= 0 && aio_error(&sentinel_) != EINPROGRESS) close(wake_fd_);
}

void Engine::Init(Napi::Env env, Napi::Function dispatcher) {
  env_ = env;
  tsfn_ = Tsfn::New(env, dispatcher, "posix-aio:completions", 0, 1, this);
  // Idle, the addon must not keep the event loop alive.
  tsfn_.Unref(env);
}

void Engine::EnsureReaper() {
  if (reaper_.joinable()) return;
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    Napi::Error::Fatal("posix-aio", "eventfd() failed for the reaper wake-up");
  }
  sentinel_.aio_fildes = wake_fd_;
  sentinel_.aio_buf = &sentinel_value_;
  sentinel_.aio_nbytes = sizeof sentinel_value_;
  sentinel_.aio_sigevent.sigev_notify = SIGEV_NONE;
  reaper_ = std::thread([this] { Run(); });
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

// Caller holds mu_. An idle reaper (nothing to watch) waits on idle_cv_ and
// is notified; one in aio_suspend() is woken through the sentinel. The write
// is skipped when the reaper is awake (it drains incoming_ before it sleeps
// again) or already being woken, and on glibc when it sleeps on a request of
// the same descriptor that runs first.
void Engine::WakeLocked(int fd, int prio, bool force) {
  if (idle_) {
    idle_cv_.notify_one();
    return;
  }
  if (wake_pending_ || (!sleeping_ && !force)) return;
#ifdef __GLIBC__
  if (!force) {
    for (const auto& [wfd, wprio] : sleep_fds_) {
      if (wfd == fd && wprio <= prio) return;
    }
  }
#else
  (void)fd;
  (void)prio;
#endif
  wake_pending_ = true;
  uint64_t one = 1;
  // The eventfd counter cannot overflow here: each write is matched by the
  // sentinel's read before wake_pending_ is cleared.
  ssize_t ignored = write(wake_fd_, &one, sizeof one);
  (void)ignored;
}

void Engine::Watch(Request* req) {
  EnsureReaper();
  req->refs++;
  Hold();
  std::lock_guard<std::mutex> lock(mu_);
  incoming_.push_back(Item{req, nullptr, req->seq, req->cb.aio_fildes,
                           req->cb.aio_reqprio});
  WakeLocked(req->cb.aio_fildes, req->cb.aio_reqprio, false);
}

void Engine::WatchAll(const std::vector<Request*>& reqs) {
  if (reqs.empty()) return;
  EnsureReaper();
  for (Request* r : reqs) {
    r->refs++;
    Hold();
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (Request* r : reqs) {
    incoming_.push_back(Item{r, nullptr, r->seq, r->cb.aio_fildes, r->cb.aio_reqprio});
    WakeLocked(r->cb.aio_fildes, r->cb.aio_reqprio, false);
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
  flush_list_.clear();
  for (Request* r : batch) {
    // glibc never stores -1 as a status: still -1 afterwards means the
    // entry was not enqueued.
    r->cb.__error_code = -1;
    flush_list_.push_back(&r->cb);
  }
  struct sigevent none {};
  none.sigev_notify = SIGEV_NONE;
  int rc = lio_listio(LIO_NOWAIT, flush_list_.data(), static_cast<int>(flush_list_.size()), &none);
  int err = rc == 0 ? 0 : errno;
  if (err == 0 || err == EIO) {
    // EIO: some entries were refused; each refused one carries its error.
    for (Request* r : batch) {
      if (r->cb.__error_code == -1) {
        r->cb.__error_code = err == 0 ? EAGAIN : err;
        r->cb.__return_value = -1;
      }
    }
  } else {
    for (Request* r : batch) {
      if (r->cb.__error_code == -1) {
        r->cb.__error_code = err;
        r->cb.__return_value = -1;
      }
    }
  }
  // Refused entries now read as finished with their error; the reaper
  // reports them like any completion.
  WatchAll(batch);
#endif
}

void Engine::AddSuspend(SuspendWait* wait) {
  EnsureReaper();
  for (Request* r : wait->list) r->refs++;
  Hold();
  std::lock_guard<std::mutex> lock(mu_);
  incoming_.push_back(Item{nullptr, wait, 0, -1, 0});
  WakeLocked(-1, 0, true);
}

void Engine::Kick() {
  if (!reaper_.joinable()) return;
  std::lock_guard<std::mutex> lock(mu_);
  WakeLocked(-1, 0, true);
}

void Engine::Run() {
  // Signals belong to the JavaScript thread (SIGEV_SIGNAL completions
  // included); the reaper must never take one.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);

  std::vector<Item> watch;
  std::vector<Item> waits;
  std::vector<Item> done;
  std::vector<const struct aiocb*> list;
  std::vector<std::pair<int, int>> fds;    // fd, lowest reqprio listed
  std::vector<size_t> fd_count;
  bool sentinel_armed = aio_read(&sentinel_) == 0;

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

    list.clear();
    fds.clear();
    fd_count.clear();
    bool left_out = false;
    if (sentinel_armed) list.push_back(&sentinel_);
    for (const Item& it : watch) {
      size_t k = 0;
      while (k < fds.size() && fds[k].first != it.fd) k++;
      if (k == fds.size()) {
        fds.emplace_back(it.fd, INT_MAX);
        fd_count.push_back(0);
      }
      if (fd_count[k] >= kPerFd || list.size() >= kMaxList) {
        left_out = true;
        continue;
      }
      fd_count[k]++;
      fds[k].second = std::min(fds[k].second, it.prio);
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

    bool bounded = left_out || has_deadline || !sentinel_armed;
    std::chrono::nanoseconds timeout = kLeftOutPoll;
    if (has_deadline) {
      timeout = std::min<std::chrono::nanoseconds>(
          timeout, next_deadline - std::chrono::steady_clock::now());
      if (!left_out && sentinel_armed) {
        timeout = next_deadline - std::chrono::steady_clock::now();
      }
    }

    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_ || !incoming_.empty()) continue;
      if (watch.empty() && waits.empty()) {
        // Nothing in flight: a condition variable wakes faster than the
        // sentinel, whose completion needs a trip through a libc worker.
        idle_ = true;
        idle_cv_.wait(lock, [this] { return stopping_ || !incoming_.empty(); });
        idle_ = false;
        continue;
      }
      sleeping_ = true;
      sleep_fds_ = fds;
    }
    if (list.empty()) {
      // Nothing to wait on and no sentinel: poll gently.
      std::this_thread::sleep_for(kLeftOutPoll);
    } else {
      SleepOn(list, timeout, bounded);
    }
    bool rearm = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      sleeping_ = false;
      if (sentinel_armed && aio_error(&sentinel_) != EINPROGRESS) {
        aio_return(&sentinel_);
        wake_pending_ = false;
        sentinel_armed = false;
        rearm = !stopping_;
      } else if (!sentinel_armed) {
        wake_pending_ = false;
        rearm = !stopping_;
      }
    }
    if (rearm) sentinel_armed = aio_read(&sentinel_) == 0;
  }

  // Hand what the reaper still holds back for teardown.
  std::lock_guard<std::mutex> lock(mu_);
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

  bool fresh = false;
  if (records_.IsEmpty() || records_cap_ < draining_.size()) {
    records_cap_ = std::max<size_t>(256, draining_.size() * 2);
    records_ = Napi::Persistent(Napi::Float64Array::New(env, records_cap_ * 4));
    fresh = true;
  }
  Napi::Float64Array records = records_.Value();
  double* rec = records.Data();
  size_t n = 0;

  for (const Item& it : draining_) {
    if (it.req != nullptr) {
      Request* r = it.req;
      // A stale seq means JavaScript already observed that submission (by
      // polling) and may have submitted again.
      if (r->seq == it.seq && r->TryClaim() && r->wrapped &&
          r->notify == Notify::kThread) {
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
    Release();
  }
  draining_.clear();
  if (n == 0) return;

  if (fresh) {
    dispatcher.Call({Napi::Number::New(env, static_cast<double>(n)), records});
  } else {
    dispatcher.Call({Napi::Number::New(env, static_cast<double>(n))});
  }
}

void Engine::Shutdown() {
  if (stopped_) return;
  Flush();
  // 1. Cancel everything this environment has in flight. Only queued
  //    requests can be cancelled; running ones finish on their own.
  for (Request* r = live_head_; r != nullptr; r = r->live_next) {
    aio_cancel(r->cb.aio_fildes, &r->cb);
  }
  // 2. Wait, bounded, for what is still running.
  auto deadline = std::chrono::steady_clock::now() + kTeardownWait;
  std::vector<const struct aiocb*> list;
  for (;;) {
    list.clear();
    for (Request* r = live_head_; r != nullptr && list.size() < kMaxList;
         r = r->live_next) {
      if (aio_error(&r->cb) == EINPROGRESS) list.push_back(&r->cb);
    }
    auto now = std::chrono::steady_clock::now();
    if (list.empty() || now >= deadline) break;
    SleepOn(list, std::chrono::milliseconds(50), true);
  }
  // 3. Stop the reaper; its sentinel must be finished before the eventfd
  //    and the block can go.
  if (reaper_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      idle_cv_.notify_one();
    }
    uint64_t one = 1;
    ssize_t ignored = write(wake_fd_, &one, sizeof one);
    (void)ignored;
    reaper_.join();
    for (int i = 0; i < 100 && aio_error(&sentinel_) == EINPROGRESS; i++) {
      ignored = write(wake_fd_, &one, sizeof one);
      list.assign(1, &sentinel_);
      SleepOn(list, std::chrono::milliseconds(10), true);
    }
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
