import { constants as osConstants } from 'node:os';
import { getSystemErrorMap } from 'node:util';

/**
 * System calls an {@link AioError} can name.
 * @example
 * if (err instanceof AioError && err.syscall === 'aio_write') retry();
 */
export type AioSyscall =
  | 'aio_read'
  | 'aio_write'
  | 'aio_fsync'
  | 'lio_listio'
  | 'aio_cancel'
  | 'aio_suspend'
  | 'aio_return'
  | 'aio_error'
  | 'open'
  | 'close'
  | 'dup'
  | 'fstat'
  | 'read'
  | 'write'
  | 'readv'
  | 'writev'
  | 'ftruncate'
  | 'fsync'
  | 'fdatasync'
  | 'fchmod'
  | 'fchown'
  | 'futime'
  | 'preadv2'
  | 'posix_fadvise'
  | 'fcntl';

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(osConstants.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}
let uvMessages: Map<number, [string, string]> | undefined;

function describe(errno: number): [string, string] {
  uvMessages ??= getSystemErrorMap();
  const known = uvMessages.get(-errno);
  if (known !== undefined) return known;
  const name = errnoNames.get(errno) ?? `E${errno}`;
  return [name, name === 'EINPROGRESS' ? 'operation in progress' : 'unknown error'];
}

const kAioError = Symbol.for('posix-aio.AioError');
const kAbortError = Symbol.for('posix-aio.AbortError');

/**
 * A failed system call, shaped like Node's `fs` errors: `code` ('EBADF'),
 * negative `errno`, `syscall`, `path` when known, and the message
 * `EBADF: bad file descriptor, aio_read`.
 * @example
 * try {
 *   await file.write(data, 0);
 * } catch (err) {
 *   if (err instanceof AioError && err.code === 'ENOSPC') console.error('disk full:', err.path);
 *   else throw err;
 * }
 */
export class AioError extends Error {
  /** Always `'AioError'`. */
  override name = 'AioError';
  /** The errno name, as in `fs` errors: `'EBADF'`, `'ENOENT'`, `'ECANCELED'`... */
  readonly code: string;
  /** The errno value, negative as in `fs` errors (`-9` for `EBADF`). */
  readonly errno: number;
  /** The system call that failed. */
  readonly syscall: AioSyscall;
  /** The path given to {@link open}, when the file was opened by path. */
  path?: string;

  /**
   * @param errno positive or negative errno value
   * @param syscall the call that failed
   * @param site an object whose `stack` was captured where the caller made
   *   the call, so that asynchronous failures still point at user code
   */
  constructor(errno: number, syscall: AioSyscall, site?: { stack?: string }, path?: string) {
    const positive = Math.abs(errno);
    const [code, desc] = describe(positive);
    super(`${code}: ${desc}, ${syscall}${path === undefined ? '' : ` '${path}'`}`);
    this.code = code;
    this.errno = -positive;
    this.syscall = syscall;
    if (path !== undefined) this.path = path;
    if (site?.stack !== undefined) {
      const nl = site.stack.indexOf('\n');
      this.stack = `${this.name}: ${this.message}${nl < 0 ? '' : site.stack.slice(nl)}`;
    }
  }

  /** True for any copy of this class, even from another installed copy. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kAioError] === true;
  }

  /** @internal Brand checked by `instanceof` across copies of the package. */
  get [kAioError](): boolean {
    return true;
  }
}

/**
 * Rejection of an operation cancelled through an `AbortSignal`; `cause` is
 * the signal's reason.
 * @example
 * const err = await file.read(buf, 0, { signal: AbortSignal.timeout(100) }).catch((e) => e);
 * if (err instanceof AbortError) console.log(err.cause); // TimeoutError DOMException
 */
export class AbortError extends Error {
  /** Always `'AbortError'`, as Node's own abort errors. */
  override name = 'AbortError';
  /** Always `'ABORT_ERR'`, as Node's own abort errors. */
  readonly code = 'ABORT_ERR';

  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options);
  }

  /** True for any copy of this class, even from another installed copy. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kAbortError] === true;
  }

  /** @internal Brand checked by `instanceof` across copies of the package. */
  get [kAbortError](): boolean {
    return true;
  }
}

/**
 * Error with a stable `ERR_AIO_*` code for misuse the platform does not report.
 * @example
 * const pending = cb.read();
 * try {
 *   cb.buffer();
 * } catch (err) {
 *   if (err instanceof AioStateError && err.code === 'ERR_AIO_IN_PROGRESS') await pending;
 * }
 */
export class AioStateError extends Error {
  /** Always `'AioStateError'`. */
  override name = 'AioStateError';
  /** `'ERR_AIO_IN_PROGRESS'` or `'ERR_AIO_DISPOSED'`. */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** Records where an asynchronous call was made (V8 formats it lazily). */
export function captureSite(fn: (...args: never[]) => unknown): { stack?: string } {
  const site: { stack?: string } = {};
  Error.captureStackTrace(site, fn);
  return site;
}
