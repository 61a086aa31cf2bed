import { native } from './binding.js';
import { AioError } from './errors.js';
import { validateFd } from './validate.js';

/**
 * `dup(fd)` (close-on-exec). glibc runs one AIO request per descriptor at a
 * time; requests spread over duplicates of one file run in parallel.
 * @throws {AioError} `EBADF`, `EMFILE`
 */
export function dupFd(fd: number): number {
  validateFd(fd);
  const r = native.dup(fd);
  if (r < 0) throw new AioError(-r, 'dup');
  return r;
}
