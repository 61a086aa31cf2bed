// Which signals may announce a completion (SIGEV_SIGNAL). glibc never checks
// the sigevent at submission; a completion queued with a signal whose action
// is the default kills the process, possibly long after the caller removed
// its listener (or Node removed every listener at exit).
#pragma once

namespace posix_aio {

// True when `signo` may notify a completion now: a real-time signal
// (SIGRTMIN..SIGRTMAX, for which a no-op handler is installed if the action
// is still the default, and left installed), or a standard signal that is
// not reserved (SIGKILL, SIGSTOP, the synchronous fault signals, SIGUSR1 for
// Node's inspector) and whose action is not the default, i.e. someone
// handles it. Called at every submission that carries a signal.
bool SignalUsable(int signo);

// A standard (non-real-time) signal number.
bool IsStandardSignal(int signo);

// Teardown, for a request still in flight that will queue `signo`: Node has
// already restored the default action of signals whose listeners it closed,
// and a late completion would kill the process; its action becomes "ignore"
// unless someone handles it.
void ShieldSignal(int signo);

}  // namespace posix_aio
