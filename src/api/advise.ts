// file.advise(offset, length, advice): posix_fadvise with fs-style names.
// AioFile calls adviseFd() with its descriptor (once: duplicates share the
// open file description, and the advice applies to the file's pages).
import { FadviseAdvice, posixFadvise } from '../core/nowait.js';
import { describe, validateFd, validateOffset } from '../core/validate.js';

/**
 * Access-pattern advice for {@link AioFile.advise} (`POSIX_FADV_*`).
 * - `'normal'`: no advice (the default read-ahead).
 * - `'sequential'`: read ahead more.
 * - `'random'`: no read-ahead.
 * - `'willneed'`: start reading the range into the page cache now.
 * - `'dontneed'`: drop the range's clean pages from the page cache.
 * - `'noreuse'`: the data is read once (Linux ignores it before 6.3).
 * @example
 * const advice: Advice = 'sequential';
 */
export type Advice = 'normal' | 'sequential' | 'random' | 'willneed' | 'dontneed' | 'noreuse';

const adviceTable: Readonly<Record<Advice, FadviseAdvice>> = Object.freeze({
  normal: FadviseAdvice.POSIX_FADV_NORMAL,
  sequential: FadviseAdvice.POSIX_FADV_SEQUENTIAL,
  random: FadviseAdvice.POSIX_FADV_RANDOM,
  willneed: FadviseAdvice.POSIX_FADV_WILLNEED,
  dontneed: FadviseAdvice.POSIX_FADV_DONTNEED,
  noreuse: FadviseAdvice.POSIX_FADV_NOREUSE,
});

/**
 * The `POSIX_FADV_*` value of an advice name.
 * @throws {TypeError} for anything but one of the six names
 * @example
 * adviceValue('dontneed'); // 4 on Linux
 */
export function adviceValue(advice: unknown): FadviseAdvice {
  if (typeof advice !== 'string' || !Object.hasOwn(adviceTable, advice)) {
    throw new TypeError(
      `advice must be one of ${Object.keys(adviceTable)
        .map((k) => `'${k}'`)
        .join(', ')}, got ${describe(advice)}`,
    );
  }
  return adviceTable[advice as Advice];
}

/**
 * `posix_fadvise(fd, offset, length, advice)`: tells the kernel how the byte
 * range will be read. `length` 0 means to the end of the file. Synchronous:
 * the call only updates read-ahead state or starts (or drops) page-cache I/O.
 * @throws {TypeError | RangeError} for a bad descriptor, range or advice name
 * @throws {AioError} `EBADF`, `ESPIPE` (a pipe or FIFO), `EINVAL` (syscall `posix_fadvise`)
 * @example
 * adviseFd(fd, 0, 0, 'dontneed'); // evict the file's clean pages
 */
export function adviseFd(fd: number, offset: number | bigint, length: number | bigint, advice: Advice): void {
  validateFd(fd);
  validateOffset(offset, 'offset');
  validateOffset(length, 'length');
  posixFadvise(fd, offset, length, adviceValue(advice));
}
