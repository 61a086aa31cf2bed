// Floor of one glibc AIO round trip, with no Node in the way: 4 KiB reads of
// a cached file at depth 1, completion observed by spinning on aio_error()
// and by sleeping in aio_suspend(), against a plain pread() loop.
//   gcc -O2 -o /tmp/aio-latency bench/c/aio-latency.c -lrt && /tmp/aio-latency FILE
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE (at least 1 MiB, cached)\n", argv[0]);
    return 2;
  }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) {
    perror("open");
    return 1;
  }
  static char buf[4096];
  const int n = 20000;
  for (int mode = 0; mode < 2; mode++) {
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
      struct aiocb cb;
      memset(&cb, 0, sizeof cb);
      cb.aio_fildes = fd;
      cb.aio_buf = buf;
      cb.aio_nbytes = sizeof buf;
      cb.aio_offset = (off_t)(i % 256) * 4096;
      cb.aio_sigevent.sigev_notify = SIGEV_NONE;
      if (aio_read(&cb) != 0) {
        perror("aio_read");
        return 1;
      }
      const struct aiocb* list[1] = {&cb};
      while (aio_error(&cb) == EINPROGRESS) {
        if (mode == 1) aio_suspend(list, 1, NULL);
      }
      aio_return(&cb);
    }
    printf("aio_read + %s: %.1f us/op\n", mode ? "aio_suspend" : "spin on aio_error",
           (now_us() - t0) / n);
  }
  double t0 = now_us();
  for (int i = 0; i < n; i++) {
    if (pread(fd, buf, sizeof buf, (off_t)(i % 256) * 4096) < 0) return 1;
  }
  printf("pread: %.2f us/op\n", (now_us() - t0) / n);
  return 0;
}
