#include "signals.h"

#include <signal.h>

#include <mutex>

namespace posix_aio {

namespace {

void Ignore(int) {}

bool Reserved(int signo) {
  switch (signo) {
    case SIGKILL:
    case SIGSTOP:
    case SIGSEGV:
    case SIGBUS:
    case SIGFPE:
    case SIGILL:
    case SIGTRAP:
    case SIGABRT:
    case SIGSYS:
    case SIGUSR1:
      return true;
    default:
      return false;
  }
}

std::mutex install_mu;

// The kernel's first real-time signal; libc keeps the first few for itself
// and reports the rest from SIGRTMIN.
#ifdef __SIGRTMIN
constexpr int kFirstNonStandard = __SIGRTMIN;
#else
const int kFirstNonStandard = SIGRTMIN;
#endif

}  // namespace

bool SignalUsable(int signo) {
  if (signo >= SIGRTMIN && signo <= SIGRTMAX) {
    std::lock_guard<std::mutex> lock(install_mu);
    struct sigaction cur {};
    if (sigaction(signo, nullptr, &cur) != 0) return false;
    if (cur.sa_handler == SIG_DFL && (cur.sa_flags & SA_SIGINFO) == 0) {
      struct sigaction sa {};
      sa.sa_handler = Ignore;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = SA_RESTART;
      if (sigaction(signo, &sa, nullptr) != 0) return false;
    }
    return true;
  }
  // Between the standard signals and SIGRTMIN: glibc's own (thread
  // cancellation, set*id), never ours to send.
  if (signo < 1 || signo >= kFirstNonStandard || Reserved(signo)) return false;
  struct sigaction cur {};
  if (sigaction(signo, nullptr, &cur) != 0) return false;
  return (cur.sa_flags & SA_SIGINFO) != 0 || cur.sa_handler != SIG_DFL;
}

bool IsStandardSignal(int signo) { return signo >= 1 && signo < kFirstNonStandard; }

void ShieldSignal(int signo) {
  std::lock_guard<std::mutex> lock(install_mu);
  struct sigaction cur {};
  if (sigaction(signo, nullptr, &cur) != 0) return;
  if (cur.sa_handler != SIG_DFL || (cur.sa_flags & SA_SIGINFO) != 0) return;
  struct sigaction sa {};
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  sigaction(signo, &sa, nullptr);
}

}  // namespace posix_aio
