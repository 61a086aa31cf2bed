// Typed mirror of native/nowait.h: calls that run on the JavaScript thread and
// never wait for a device. No policy here; src/api/nowait.ts decides when a
// read may be served from the page cache.
import { constants as c, native } from './binding.js';
import { AioError } from './errors.js';
import { validateFd, validateOffset } from './validate.js';

/** Whether the addon was built with `preadv2(RWF_NOWAIT)`; without it {@link preadNowait} returns `-ENOSYS`. */
export const HAVE_RWF_NOWAIT: boolean = c.HAVE_RWF_NOWAIT;

/** `POSIX_FADV_*` values from the platform's `<fcntl.h>`. */
export const FadviseAdvice = Object.freeze({
  POSIX_FADV_NORMAL: c.POSIX_FADV_NORMAL,
  POSIX_FADV_SEQUENTIAL: c.POSIX_FADV_SEQUENTIAL,
  POSIX_FADV_RANDOM: c.POSIX_FADV_RANDOM,
  POSIX_FADV_WILLNEED: c.POSIX_FADV_WILLNEED,
  POSIX_FADV_DONTNEED: c.POSIX_FADV_DONTNEED,
  POSIX_FADV_NOREUSE: c.POSIX_FADV_NOREUSE,
});
export type FadviseAdvice = (typeof FadviseAdvice)[keyof typeof FadviseAdvice];

/**
 * `preadv2(fd, iov, 1, position, RWF_NOWAIT)` into `view[offset, offset + length)`,
 * on the calling (JavaScript) thread. Reads only what the page cache holds:
 * the byte count (possibly short: the rest is not cached, or end of file),
 * or a negative errno: `-EAGAIN` when the first byte is not cached (nothing
 * read; the kernel starts read-ahead), `-EOPNOTSUPP` where the file system or
 * kernel lacks the flag, `-ENOSYS` where the addon was built without it.
 * Never use it on an `O_DIRECT` descriptor: there it waits for the device.
 * Arguments are checked by the caller (the hot path); native code re-checks
 * types and the range.
 * @example
 * const n = preadNowait(fd, buf, 0, 0, buf.length);
 * if (n === -11) console.log('not cached');
 */
export function preadNowait(
  fd: number,
  view: ArrayBufferView,
  position: number | bigint,
  offset = 0,
  length = view.byteLength - offset,
): number {
  return native.preadNowait(fd, view, position, offset, length);
}

/**
 * `posix_fadvise(fd, offset, length, advice)`; a `length` of 0 means "to the
 * end of the file".
 * @throws {AioError} `EBADF`, `EINVAL`, `ESPIPE` (syscall `posix_fadvise`)
 * @throws {TypeError | RangeError} for bad arguments
 * @example
 * posixFadvise(fd, 0, 0, FadviseAdvice.POSIX_FADV_DONTNEED); // drop the clean cached pages
 */
export function posixFadvise(
  fd: number,
  offset: number | bigint,
  length: number | bigint,
  advice: FadviseAdvice,
): void {
  validateFd(fd);
  validateOffset(offset, 'offset');
  validateOffset(length, 'length');
  const r = native.fadvise(fd, offset, length, advice);
  if (r < 0) throw new AioError(-r, 'posix_fadvise');
}

/**
 * `fcntl(fd, F_GETFL)`: the descriptor's access mode and status flags.
 * @throws {AioError} `EBADF` (syscall `fcntl`)
 * @example
 * const direct = (fdFlags(fd) & O_DIRECT) !== 0;
 */
export function fdFlags(fd: number): number {
  validateFd(fd);
  const r = native.fdFlags(fd);
  if (r < 0) throw new AioError(-r, 'fcntl');
  return r;
}
