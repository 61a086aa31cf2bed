// How a reaper asleep in aio_suspend() is woken without holding a libc
// worker (issue: one parked worker per environment stalled the process once
// every worker held one).
//
// The anchor: one process-wide aio_read() of an eventfd that nobody writes.
// It is the head of that descriptor's queue for the life of the process and
// occupies one glibc worker, paid for by growing glibc's pool by one in
// aio_init() before the first request (EnsurePool()).
//
// A sentinel: one per environment, an aio_read() of the same eventfd. glibc
// runs one request per descriptor at a time, so a sentinel stays queued
// behind the anchor and never runs; the reaper lists it in aio_suspend(),
// and Fire() wakes the reaper with aio_cancel() on it: cancelling a queued
// request completes it with ECANCELED and wakes its waiters at once, with
// no worker involved. The sentinel is never the head of its queue (the
// anchor is), so glibc's queue-head defect (see engine.h) cannot strike.
//
// Alternatives measured against this one are in engine.h.
#pragma once

#include <aio.h>

#include <cstdint>

namespace posix_aio {

// Records the aio_init() tunables to use for the pool; false when the pool
// has already started (glibc applies aio_init() only before its first
// request), or off glibc.
bool SetPoolConfig(int threads, int num, int idle_time);

// Starts glibc's pool (aio_init with one extra thread) and the anchor, once
// per process. Every path that hands a request to libc calls it first.
// False, with errno set, when the eventfd or the anchor cannot be had.
bool EnsurePool();

// True for the anchor's descriptor: aio_cancel(fd, NULL) on it would take
// every sentinel and, if no worker holds the anchor yet, the anchor too.
bool IsAnchorFd(int fd);

class Sentinel {
 public:
  Sentinel();
  // Queues the sentinel behind the anchor (EnsurePool() must have
  // succeeded). False when libc refuses it.
  bool Arm();
  // Any thread, while armed: completes the sentinel (ECANCELED), waking
  // whoever waits on it.
  void Fire();
  // Armed and not yet completed.
  bool Pending() const;
  // After completion: collects the result so the block can be armed again.
  void Reset();
  // Teardown: takes the sentinel out of libc. False if libc still holds it
  // (only if the anchor is gone); the block must then never be freed.
  bool Disarm();
  const struct aiocb* cb() const { return &cb_; }

 private:
  struct aiocb cb_ {};
  uint64_t value_ = 0;
};

}  // namespace posix_aio
