// AioFile: the promise API most users touch. Policy only: every operation
// is one AioCb (or one lioListio) from src/core, plus admission control,
// AbortSignal phases, close ordering and fs-shaped errors.
import { setMaxListeners } from 'node:events';
import fs from 'node:fs';
import PQueue from 'p-queue';
import { AioCb, internals } from '../core/aiocb.js';
import { AIO_LISTIO_MAX, AioFsyncMode, LioMode, LioOpcode, O_DIRECT } from '../core/constants.js';
import { AbortError, AioError, type AioSyscall } from '../core/errors.js';
import { dupFd } from '../core/fd.js';
import { lioListio } from '../core/lio.js';
import {
  describe,
  validateAbortSignal,
  validateFd,
  validateInt,
  validateOffset,
  validateOptions,
  validateView,
} from '../core/validate.js';
import { type ReadChunksOptions, readChunks, type WriteChunksOptions, writeChunks } from './chunks.js';

/**
 * Options of {@link open}.
 * @example
 * const file = await open('/data/db.bin', 'r+', 0o644, { concurrency: 128, direct: true });
 */
export interface AioFileOptions {
  /** Most operations in flight on this file; the rest wait in a queue. @default 64 */
  readonly concurrency?: number;
  /** Open with `O_DIRECT` where the platform has it (buffers must then be aligned; see {@link alignedBuffer}). @default false */
  readonly direct?: boolean;
  /**
   * Descriptors to spread operations over (the file's own plus `fanout - 1`
   * duplicates). glibc runs one request per descriptor at a time, so with 1
   * operations run in submission order, and with more they run in parallel
   * with no order between them, as with `fs.promises`. Not allowed with
   * append flags, whose writes must stay in order.
   * @default 1, or 16 with `direct` (measured: 4 KiB O_DIRECT reads at depth
   *   64 scale from about 13k ops/s on one descriptor to 68k on 16)
   */
  readonly fanout?: number;
}

/**
 * Options of {@link AioFile.fromFd}.
 * @example
 * const file = AioFile.fromFd(fd, { autoClose: true, concurrency: 16 });
 */
export interface FromFdOptions {
  /** Close the descriptor when the file is closed. @default false */
  readonly autoClose?: boolean;
  /** @default 64 */
  readonly concurrency?: number;
  /** See {@link AioFileOptions.fanout}. @default 1 */
  readonly fanout?: number;
}

/**
 * Options of one read or write.
 * @example
 * await file.read(buf, 0, { signal: AbortSignal.timeout(500), priority: 1 });
 */
export interface OperationOptions {
  /** Cancels the operation; see the README's cancellation phases. */
  readonly signal?: AbortSignal | undefined;
  /** `aio_reqprio`: lowers this request's priority among those on the same file. @default 0 */
  readonly priority?: number;
}

/**
 * One entry of {@link AioFile.batch}.
 * @example
 * const ops: BatchOp[] = [{ op: 'read', buffer: Buffer.alloc(512), position: 0 }, { op: 'nop' }];
 */
export type BatchOp =
  | {
      /** Read `buffer.byteLength` bytes at `position` into `buffer` (`LIO_READ`). */
      readonly op: 'read';
      /** Destination of the read. */
      readonly buffer: ArrayBufferView;
      /** File offset of the first byte. */
      readonly position: number | bigint;
    }
  | {
      /** Write all of `buffer` at `position` (`LIO_WRITE`). */
      readonly op: 'write';
      /** Bytes to write. */
      readonly buffer: ArrayBufferView;
      /** File offset of the first byte. */
      readonly position: number | bigint;
    }
  | {
      /** No operation (`LIO_NOP`): its promise resolves to 0. */
      readonly op: 'nop';
    };

const DEFAULT_CONCURRENCY = 64;
// Cap for one lio_listio where the platform sets none: keeps glibc's
// per-descriptor queue walks short.
const DEFAULT_LIST_MAX = 1024;
const LIST_MAX = AIO_LISTIO_MAX > 0 ? AIO_LISTIO_MAX : DEFAULT_LIST_MAX;
const POOL_BUFFER_MAX = 65536;
const EBADF = 9;
const ECANCELED = 125;

const flagTable: Record<string, number> = (() => {
  const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND, O_EXCL, O_SYNC } = fs.constants;
  return {
    r: O_RDONLY,
    rs: O_RDONLY | O_SYNC,
    sr: O_RDONLY | O_SYNC,
    'r+': O_RDWR,
    'rs+': O_RDWR | O_SYNC,
    'sr+': O_RDWR | O_SYNC,
    w: O_TRUNC | O_CREAT | O_WRONLY,
    wx: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL,
    xw: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL,
    'w+': O_TRUNC | O_CREAT | O_RDWR,
    'wx+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL,
    'xw+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL,
    a: O_APPEND | O_CREAT | O_WRONLY,
    ax: O_APPEND | O_CREAT | O_WRONLY | O_EXCL,
    xa: O_APPEND | O_CREAT | O_WRONLY | O_EXCL,
    as: O_APPEND | O_CREAT | O_WRONLY | O_SYNC,
    sa: O_APPEND | O_CREAT | O_WRONLY | O_SYNC,
    'a+': O_APPEND | O_CREAT | O_RDWR,
    'ax+': O_APPEND | O_CREAT | O_RDWR | O_EXCL,
    'xa+': O_APPEND | O_CREAT | O_RDWR | O_EXCL,
    'as+': O_APPEND | O_CREAT | O_RDWR | O_SYNC,
    'sa+': O_APPEND | O_CREAT | O_RDWR | O_SYNC,
  };
})();

function toFlags(flags: unknown, direct: boolean): number {
  let n: number;
  if (typeof flags === 'number') n = validateInt(flags, 'flags', 0, 2 ** 31 - 1);
  else if (typeof flags === 'string' && flagTable[flags] !== undefined) n = flagTable[flags] as number;
  else throw new TypeError(`flags must be an fs.open flag string or number, got ${describe(flags)}`);
  if (direct) {
    if (O_DIRECT === undefined) throw new AioError(22, 'open');
    n |= O_DIRECT;
  }
  return n;
}

const DIRECT_FANOUT = 16;

function validateFanout(f: unknown, fallback = 1): number {
  return f === undefined ? fallback : validateInt(f, 'options.fanout', 1, 1024);
}

function duplicates(fd: number, fanout: number): number[] {
  const fds = [fd];
  try {
    while (fds.length < fanout) fds.push(dupFd(fd));
  } catch (e) {
    for (const d of fds.slice(1)) fs.closeSync(d);
    throw e;
  }
  return fds;
}

function validateConcurrency(c: unknown): number {
  return c === undefined ? DEFAULT_CONCURRENCY : validateInt(c, 'options.concurrency', 1, 2 ** 20);
}

function abortError(signal: AbortSignal): AbortError {
  return new AbortError(undefined, { cause: signal.reason });
}

const kCloseReason = Symbol('posix-aio.closing');

// Set by AioFile's static block: open() builds files that own their descriptor.
let openFile: (fds: number[], path: string, limit: number) => AioFile;

/**
 * A file opened for POSIX AIO. Mirrors `fs.promises.FileHandle` where the
 * concepts match: `read`, `write`, `sync`, `datasync`, `stat`, `close`,
 * `Symbol.asyncDispose`.
 *
 * @example
 * await using file = await open('data.bin', 'r+');
 * await file.write(Buffer.from('hello'), 0);
 */
export class AioFile implements AsyncDisposable {
  readonly #fd: number;
  // #fd and its duplicates; operations take them in turn.
  readonly #fds: number[];
  #turn = 0;
  readonly #path: string | undefined;
  readonly #autoClose: boolean;
  readonly #limit: number;
  // Operations waiting for a place, oldest first. Concurrency 1: only the
  // head waits for a free place; the rest wait behind it.
  readonly #queue = new PQueue({ concurrency: 1 });
  #active = 0;
  readonly #pool: AioCb[] = [];
  readonly #readPool: AioCb[] = [];
  readonly #writePool: AioCb[] = [];
  #nextPlace: (() => boolean) | undefined;
  #closing = false;
  #closeCtl: AbortController | undefined;
  #closed: Promise<void> | undefined;
  #idle: (() => void) | undefined;

  private constructor(fds: number[], path: string | undefined, autoClose: boolean, limit: number) {
    const fd = fds[0] as number;
    this.#fd = fd;
    this.#fds = fds;
    this.#path = path;
    this.#autoClose = autoClose;
    this.#limit = limit;
  }

  static {
    openFile = (fds, path, limit) => new AioFile(fds, path, true, limit);
  }

  /**
   * Wraps a descriptor the caller owns.
   * @throws {TypeError | RangeError} for a bad descriptor or options
   * @example
   * const file = AioFile.fromFd(fs.openSync('data.bin', 'r'), { autoClose: true });
   */
  static fromFd(fd: number, options: FromFdOptions = {}): AioFile {
    validateFd(fd);
    const o = validateOptions<FromFdOptions>(options);
    const limit = validateConcurrency(o.concurrency);
    return new AioFile(duplicates(fd, validateFanout(o.fanout)), undefined, o.autoClose === true, limit);
  }

  /** The file descriptor. */
  get fd(): number {
    return this.#fd;
  }

  /** The path given to {@link open}, if any. */
  get path(): string | undefined {
    return this.#path;
  }

  /**
   * Reads `buffer.byteLength` bytes at `position`.
   * @returns bytes read; 0 at end of file
   * @throws rejects with {@link AioError} (fs-shaped) or {@link AbortError}
   * @example
   * const buf = Buffer.alloc(4096);
   * const n = await file.read(buf, 0, { signal: AbortSignal.timeout(1000) });
   */
  async read(buffer: ArrayBufferView, position: number | bigint, options?: OperationOptions): Promise<number> {
    return this.#single('aio_read', buffer, position, options);
  }

  /**
   * Writes all of `buffer` at `position` (at the end for files opened to append).
   * @returns bytes written
   * @throws rejects with {@link AioError} (`EBADF` for a read-only descriptor or
   *   after `close()`, `ENOSPC` when the device is full) or {@link AbortError}
   * @example
   * const n = await file.write(Buffer.from('hello'), 0); // 5
   */
  async write(buffer: ArrayBufferView, position: number | bigint, options?: OperationOptions): Promise<number> {
    return this.#single('aio_write', buffer, position, options);
  }

  /**
   * Flushes data and metadata (`aio_fsync(O_SYNC)`) of the writes completed before it.
   * @throws rejects with {@link AioError} or {@link AbortError}
   * @example
   * await file.write(record, offset);
   * await file.sync();
   */
  async sync(options?: { readonly signal?: AbortSignal }): Promise<void> {
    await this.#fsync(AioFsyncMode.O_SYNC, options);
  }

  /**
   * Flushes data (`aio_fsync(O_DSYNC)`) of the writes completed before it.
   * @throws rejects with {@link AioError} or {@link AbortError}
   * @example
   * await file.write(record, offset);
   * await file.datasync();
   */
  async datasync(options?: { readonly signal?: AbortSignal }): Promise<void> {
    await this.#fsync(AioFsyncMode.O_DSYNC, options);
  }

  /**
   * `fstat` of the descriptor.
   * @throws rejects with {@link AioError} `EBADF` after `close()`
   * @example
   * const { size } = await file.stat();
   */
  async stat(): Promise<fs.Stats> {
    if (this.#closing) throw this.#error(EBADF, 'fstat');
    return new Promise((resolve, reject) => {
      fs.fstat(this.#fd, (err, st) => (err ? reject(err) : resolve(st)));
    });
  }

  /**
   * Submits `ops` with one `lio_listio(LIO_NOWAIT)` and returns one promise
   * per op, in order. A failed entry rejects only its own promise. Lists
   * longer than the concurrency limit or the platform's list limit are
   * split; entries libc refuses with EAGAIN are resubmitted.
   * @throws {TypeError} when `ops` is not an array (a bad entry rejects its own promise)
   * @example
   * const [w, r] = await Promise.all(file.batch([
   *   { op: 'write', buffer: Buffer.from('abc'), position: 0 },
   *   { op: 'read', buffer: Buffer.alloc(3), position: 100 },
   * ]));
   */
  batch(ops: readonly BatchOp[], options?: { readonly signal?: AbortSignal }): Promise<number>[] {
    if (!Array.isArray(ops)) throw new TypeError(`ops must be an array, got ${describe(ops)}`);
    let signal: AbortSignal | undefined;
    let failAll: unknown;
    try {
      signal = validateAbortSignal(validateOptions<{ signal: AbortSignal }>(options).signal);
    } catch (e) {
      failAll = e;
    }
    const results: Promise<number>[] = new Array(ops.length);
    const pending: { index: number; cb: AioCb; resolve: (n: number) => void; reject: (e: unknown) => void }[] = [];
    for (let i = 0; i < ops.length; i++) {
      results[i] = new Promise<number>((resolve, reject) => {
        if (failAll !== undefined) return reject(failAll);
        if (signal?.aborted) return reject(abortError(signal));
        if (this.#closing) return reject(this.#error(EBADF, 'lio_listio'));
        try {
          const cb = this.#batchCb(ops[i]);
          if (cb === undefined) resolve(0);
          else pending.push({ index: i, cb, resolve, reject });
        } catch (e) {
          reject(e);
        }
      });
    }
    const step = Math.min(this.#limit, LIST_MAX);
    for (let at = 0; at < pending.length; at += step) {
      void this.#runBatch(pending.slice(at, at + step), signal);
    }
    return results;
  }

  /**
   * Reads the byte range in order, keeping `depth` reads in flight ahead of
   * the consumer. Breaking out of the loop cancels the reads in flight.
   * @throws the iteration rejects with {@link AioError} or {@link AbortError};
   *   with TypeError or RangeError for bad options (at the first `next()`)
   * @example
   * for await (const chunk of file.readChunks({ chunkSize: 1 << 20 })) hash.update(chunk);
   */
  readChunks(options?: ReadChunksOptions): AsyncIterableIterator<Buffer> {
    return readChunks(this, options);
  }

  /**
   * Writes every chunk of `source` back to back from `position`, up to
   * `depth` writes in flight.
   * @returns total bytes written
   * @throws rejects with the first failed write's {@link AioError}, with
   *   {@link AbortError} when `signal` fires, or with the source's own error,
   *   after the writes in flight have settled; TypeError for a source that is
   *   not iterable
   * @example
   * const total = await dst.writeChunks(src.readChunks(), { position: 0 });
   */
  writeChunks(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options?: WriteChunksOptions): Promise<number> {
    return writeChunks(this, source, options);
  }

  /**
   * Waits for operations in flight, rejects those still queued (`ECANCELED`),
   * then closes the descriptor (when this file owns it). Idempotent; later
   * operations reject with `EBADF`.
   * @throws rejects with the fs error of `close(2)`, if it fails
   * @example
   * await file.close();
   */
  close(): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    this.#closing = true;
    this.#pool.length = 0;
    this.#readPool.length = 0;
    this.#writePool.length = 0;
    this.#closeCtl?.abort(kCloseReason);
    this.#closed = (async () => {
      if (this.#active > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
      // Nothing is in flight: no request can meet a reused descriptor number.
      const owned = this.#autoClose ? this.#fds : this.#fds.slice(1);
      await Promise.all(
        owned.map(
          (fd) =>
            new Promise<void>((resolve, reject) => {
              fs.close(fd, (err) => (err ? reject(this.#decorate(err)) : resolve()));
            }),
        ),
      );
    })();
    return this.#closed;
  }

  /** Closes the file, as {@link AioFile.close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #single(
    syscall: 'aio_read' | 'aio_write',
    buffer: ArrayBufferView,
    position: number | bigint,
    options: OperationOptions | undefined,
  ): Promise<number> {
    validateView(buffer);
    validateOffset(position, 'position');
    let signal: AbortSignal | undefined;
    let priority = 0;
    if (options !== undefined) {
      const o = validateOptions<OperationOptions>(options);
      signal = validateAbortSignal(o.signal);
      if (o.priority !== undefined) priority = validateInt(o.priority, 'options.priority', 0, 2 ** 31 - 1);
      if (signal?.aborted) throw abortError(signal);
    }
    if (this.#closing) throw this.#error(EBADF, syscall);
    const wait = this.#admit(1, signal);
    if (wait !== undefined) await this.#waitAdmission(wait, signal, syscall);
    // Reuse an idle block from this file's pool when there is one: making a
    // native block per operation costs about a fifth of the hot path.
    const fd = this.#pick();
    let cb = this.#pool.pop();
    if (cb === undefined || !internals.retarget(cb, fd, position, buffer, priority)) {
      cb = AioCb.fromMutSlice(fd, position, buffer, priority);
    }
    try {
      const opts = signal === undefined ? undefined : { signal };
      return await (syscall === 'aio_read' ? cb.read(opts) : cb.write(opts));
    } catch (e) {
      throw this.#decorate(e);
    } finally {
      // A pooled block keeps its last buffer referenced: only small ones.
      if (buffer.byteLength <= POOL_BUFFER_MAX && this.#pool.length < this.#limit && !this.#closing) {
        this.#pool.push(cb);
      }
      this.#leave(1);
    }
  }

  async #fsync(mode: AioFsyncMode, options: { readonly signal?: AbortSignal } | undefined): Promise<void> {
    const signal = validateAbortSignal(validateOptions<{ signal: AbortSignal }>(options).signal);
    if (signal?.aborted) throw abortError(signal);
    if (this.#closing) throw this.#error(EBADF, 'aio_fsync');
    const wait = this.#admit(1, signal);
    if (wait !== undefined) await this.#waitAdmission(wait, signal, 'aio_fsync');
    try {
      // aio_fsync() covers the requests queued on its own descriptor: with
      // duplicates, each gets one.
      const opts = signal === undefined ? undefined : { signal };
      if (this.#fds.length === 1) await AioCb.fromFd(this.#fd).fsync(mode, opts);
      else await Promise.all(this.#fds.map((fd) => AioCb.fromFd(fd).fsync(mode, opts)));
    } catch (e) {
      throw this.#decorate(e);
    } finally {
      this.#leave(1);
    }
  }

  #batchCb(op: BatchOp | undefined): AioCb | undefined {
    if (typeof op !== 'object' || op === null)
      throw new TypeError(`batch entries must be objects, got ${describe(op)}`);
    if (op.op === 'nop') return undefined;
    if (op.op !== 'read' && op.op !== 'write') {
      throw new TypeError(
        `batch entry op must be 'read', 'write' or 'nop', got ${describe((op as { op: unknown }).op)}`,
      );
    }
    const buffer = validateView(op.buffer, 'buffer');
    const position = validateOffset(op.position, 'position');
    const fd = this.#pick();
    const read = op.op === 'read';
    const cb = (read ? this.#readPool : this.#writePool).pop();
    if (cb !== undefined && internals.retarget(cb, fd, position, buffer, 0)) return cb;
    return AioCb.fromMutSlice(fd, position, buffer, 0, undefined, read ? LioOpcode.LIO_READ : LioOpcode.LIO_WRITE);
  }

  // Gives settled batch blocks back to their pool (see #single).
  #recycle(cbs: AioCb[]): void {
    if (this.#closing) return;
    for (const cb of cbs) {
      if (cb.nbytes > POOL_BUFFER_MAX) continue;
      const pool = internals.opcode(cb) === LioOpcode.LIO_READ ? this.#readPool : this.#writePool;
      if (pool.length < this.#limit) pool.push(cb);
    }
  }

  async #runBatch(
    entries: { cb: AioCb; resolve: (n: number) => void; reject: (e: unknown) => void }[],
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const n = entries.length;
    try {
      const wait = this.#admit(n, signal);
      if (wait !== undefined) await this.#waitAdmission(wait, signal, 'lio_listio');
    } catch (e) {
      for (const en of entries) en.reject(e);
      return;
    }
    let onAbort: (() => void) | undefined;
    try {
      if (signal?.aborted) throw abortError(signal);
      const promises = lioListio(
        LioMode.LIO_NOWAIT,
        entries.map((en) => en.cb),
      );
      if (signal !== undefined) {
        onAbort = () => {
          for (const en of entries) if (en.cb.inProgress) en.cb.cancel();
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
      await Promise.all(
        promises.map((p, i) => {
          const en = entries[i] as (typeof entries)[number];
          return p.then(en.resolve, (e: unknown) => {
            const cancelled = signal?.aborted && (e as { code?: string }).code === 'ECANCELED';
            en.reject(cancelled ? abortError(signal as AbortSignal) : this.#decorate(e));
          });
        }),
      );
      this.#recycle(entries.map((en) => en.cb));
    } catch (e) {
      for (const en of entries) en.reject(this.#decorate(e));
    } finally {
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
      this.#leave(n);
    }
  }

  // Takes `n` places at once when free and nobody waits; otherwise returns
  // the queue entry to wait on.
  #admit(n: number, signal: AbortSignal | undefined): Promise<void> | undefined {
    if (this.#queue.size === 0 && this.#queue.pending === 0 && this.#active + n <= this.#limit) {
      this.#active += n;
      return undefined;
    }
    if (this.#closeCtl === undefined) {
      this.#closeCtl = new AbortController();
      // Every queued entry listens to it; any number may wait.
      setMaxListeners(0, this.#closeCtl.signal);
    }
    const closing = this.#closeCtl.signal;
    const combined = signal === undefined ? closing : AbortSignal.any([signal, closing]);
    return this.#queue.add(
      ({ signal: s }) =>
        new Promise<void>((resolve, reject) => {
          // A request larger than the limit runs alone rather than never.
          const take = () => {
            if (this.#active + n > this.#limit && this.#active > 0) return false;
            this.#active += n;
            this.#nextPlace = undefined;
            s?.removeEventListener('abort', drop);
            resolve();
            return true;
          };
          const drop = () => {
            if (this.#nextPlace === take) this.#nextPlace = undefined;
            reject(s?.reason);
          };
          if (!take()) {
            this.#nextPlace = take;
            s?.addEventListener('abort', drop, { once: true });
          }
        }),
      { signal: combined },
    );
  }

  async #waitAdmission(wait: Promise<void>, signal: AbortSignal | undefined, syscall: AioSyscall): Promise<void> {
    try {
      await wait;
    } catch (e) {
      if (e === kCloseReason) throw this.#error(ECANCELED, syscall);
      if (signal?.aborted) throw abortError(signal);
      throw e;
    }
  }

  #leave(n: number): void {
    this.#active -= n;
    this.#nextPlace?.();
    if (this.#active === 0 && this.#idle !== undefined) {
      const idle = this.#idle;
      this.#idle = undefined;
      idle();
    }
  }

  #pick(): number {
    const fds = this.#fds;
    return fds.length === 1 ? this.#fd : (fds[this.#turn++ % fds.length] as number);
  }

  #error(errno: number, syscall: AioSyscall): AioError {
    return new AioError(errno, syscall, undefined, this.#path);
  }

  #decorate(e: unknown): unknown {
    if (this.#path !== undefined && e instanceof AioError && e.path === undefined) e.path = this.#path;
    return e;
  }
}

/**
 * Opens `path` for POSIX AIO.
 * @param flags as `fs.open` (string or number) @default 'r'
 * @param mode permissions for a created file @default 0o666
 * @throws rejects with an fs-shaped error (`ENOENT`, `EACCES`, ...) with `path`
 * @example
 * const file = await open('/var/data/log.bin', 'a+', 0o644, { concurrency: 32 });
 */
export async function open(
  path: string | URL,
  flags: string | number = 'r',
  mode = 0o666,
  options: AioFileOptions = {},
): Promise<AioFile> {
  const o = validateOptions<AioFileOptions>(options);
  const limit = validateConcurrency(o.concurrency);
  const n = toFlags(flags, o.direct === true);
  const append = (n & fs.constants.O_APPEND) !== 0;
  const fanout = validateFanout(o.fanout, o.direct === true && !append ? DIRECT_FANOUT : 1);
  if (fanout > 1 && append) {
    throw new RangeError('options.fanout must be 1 for append flags: appended writes must run in order');
  }
  validateInt(mode, 'mode', 0, 0o7777);
  const p = path instanceof URL ? path : String(path);
  const fd = await new Promise<number>((resolve, reject) => {
    fs.open(p, n, mode, (err, fd) => (err ? reject(err) : resolve(fd)));
  });
  let fds: number[];
  try {
    fds = duplicates(fd, fanout);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  return openFile(fds, typeof p === 'string' ? p : p.pathname, limit);
}
