// The per-file engine under AioFile, its streams and iterators: descriptors,
// the one read primitive and the one write primitive (each one AioCb), list
// submission (one lioListio), the file position, the record of mutating
// operations not yet completed, metadata calls ordered after them, and close.
// Everything here takes arguments already validated by the public surface.
import * as fs from 'node:fs';
import { AioCb, internals } from '../core/aiocb.js';
import { AIO_LISTIO_MAX, AioFsyncMode, LioMode, LioOpcode } from '../core/constants.js';
import { AbortError, AioError, type AioSyscall } from '../core/errors.js';
import { lioListio } from '../core/lio.js';
import { Admission, type Hub, kCloseReason, Signals } from './admission.js';
import { createNowaitState, mutationSettled, mutationStarted, type NowaitState, readThrough } from './nowait.js';

/**
 * What every operation carries: an optional user signal and `aio_reqprio`;
 * reads also whether they may try the page cache first (false: AIO only).
 */
export interface OpOptions {
  readonly signal: AbortSignal | undefined;
  readonly reqprio: number;
  readonly nowait?: boolean | undefined;
}

export const NO_OPTIONS: OpOptions = Object.freeze({ signal: undefined, reqprio: 0 });

// Cap for one lio_listio where the platform sets none: keeps glibc's
// per-descriptor queue walks short.
const DEFAULT_LIST_MAX = 1024;
export const LIST_MAX = AIO_LISTIO_MAX > 0 ? AIO_LISTIO_MAX : DEFAULT_LIST_MAX;
const POOL_BUFFER_MAX = 65536;
const EBADF = 9;
const ECANCELED = 125;
const noop = () => {};

export function abortError(signal: AbortSignal): AbortError {
  return new AbortError(undefined, { cause: signal.reason });
}

/** One entry of a list submission. */
export interface ListEntry {
  readonly op: 'read' | 'write';
  readonly buffer: ArrayBufferView;
  readonly position: number | bigint;
}

export class Engine {
  readonly fd: number;
  // fd and its duplicates; operations take them in turn.
  readonly fds: number[];
  readonly path: string | undefined;
  readonly autoClose: boolean;
  // O_APPEND: a write at the file position leaves the position at the end.
  readonly append: boolean;
  readonly admission: Admission;
  readonly signals = new Signals();
  #turn = 0;
  readonly #pool: AioCb[] = [];
  readonly #readPool: AioCb[] = [];
  readonly #writePool: AioCb[] = [];
  #closing = false;
  #closed: Promise<void> | undefined;

  // The file position of FileHandle calls made with position null. Such
  // calls run one after another (each starts where the previous one ended),
  // as the kernel's offset does for sequential calls on one descriptor.
  #cursor: number | bigint = 0;
  // False after an appending write at the position: the next one asks fstat.
  #cursorKnown = true;
  #cursorTail: Promise<unknown> = Promise.resolve();

  // Mutating operations (writes, truncate, fsync, batch and list writes)
  // submitted and not yet completed. Metadata calls wait for them; a read
  // that bypasses AIO must not overtake them either.
  // Invariant: nowait.mutations === #mutations.size (track() keeps both), so
  // the page-cache fast path refuses while any is incomplete.
  readonly #mutations = new Set<Promise<unknown>>();
  // Settles once every mutating metadata call (ftruncate) made so far has
  // completed; undefined when none is in flight.
  #fence: Promise<void> | undefined;

  /** The page-cache fast path of this file (api/nowait.ts). */
  readonly nowait: NowaitState;

  constructor(
    fds: number[],
    path: string | undefined,
    autoClose: boolean,
    limit: number,
    append: boolean,
    nowait: { nowait?: boolean | undefined; direct?: boolean | undefined } = {},
  ) {
    this.fd = fds[0] as number;
    this.fds = fds;
    this.path = path;
    this.autoClose = autoClose;
    this.append = append;
    this.admission = new Admission(limit);
    this.nowait = createNowaitState(this.fd, { nowait: nowait.nowait ?? true, direct: nowait.direct === true });
  }

  get closing(): boolean {
    return this.#closing;
  }

  /** Mutating operations submitted and not yet completed. */
  get pendingMutations(): number {
    return this.#mutations.size;
  }

  /** Resolves once every mutating operation submitted so far has settled. */
  mutationsSettled(): Promise<void> {
    if (this.#mutations.size === 0) return Promise.resolve();
    return Promise.allSettled([...this.#mutations]).then(noop);
  }

  /** Records `p` as a mutating operation until it settles. */
  track<T>(p: Promise<T>): Promise<T> {
    if (this.#mutations.has(p)) return p;
    this.#mutations.add(p);
    mutationStarted(this.nowait);
    const done = () => {
      this.#mutations.delete(p);
      mutationSettled(this.nowait);
    };
    p.then(done, done);
    return p;
  }

  /**
   * The one read primitive: one transfer into `buffer` at `position`, or at
   * the file position (which then advances) when `position` is null.
   * Returns what that one transfer read (0 at end of file).
   *
   * Order of checks (api/nowait.ts, point 2): an aborted signal rejects,
   * then a closing file (EBADF); then the page cache is tried unless
   * `o.nowait` is false, the file's fast path is off (O_DIRECT, nowait:
   * false, unsupported) or a mutating operation is incomplete. An inline
   * hit takes no admission place and crosses no thread; the uncached rest
   * (or all of a miss) is one AIO read, so a partial hit is never reported
   * as a short read. The inline attempt's own errors are never surfaced:
   * the AIO read of the same range reports.
   */
  read(buffer: ArrayBufferView, position: number | bigint | null, o: OpOptions): Promise<number> {
    if (position === null) return this.atCursor((at) => this.#read(buffer, at, o), true);
    return this.#read(buffer, position, o);
  }

  #read(buffer: ArrayBufferView, position: number | bigint, o: OpOptions): Promise<number> {
    const signal = o.signal;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.#closing) return Promise.reject(this.error(EBADF, 'aio_read'));
    const whole = buffer.byteLength;
    const r = readThrough(
      this.nowait,
      this.fd,
      buffer,
      0,
      whole,
      position,
      (off, len, at) =>
        this.#single(
          'aio_read',
          off === 0 && len === whole ? buffer : new Uint8Array(buffer.buffer, buffer.byteOffset + off, len),
          at,
          o,
        ),
      o.nowait !== false,
    );
    return typeof r === 'number' ? Promise.resolve(r) : r;
  }

  /** The one write primitive: one transfer, as {@link read}. */
  write(buffer: ArrayBufferView, position: number | bigint | null, o: OpOptions): Promise<number> {
    if (position === null) return this.track(this.#atCursor('aio_write', buffer, o));
    return this.track(this.#single('aio_write', buffer, position, o));
  }

  /** Runs `body(start)` at the file position, then advances it by `body`'s result. */
  atCursor(body: (at: number | bigint) => Promise<number>, advance: boolean): Promise<number> {
    const run = async () => {
      if (!this.#cursorKnown) {
        this.#cursor = await this.#size();
        this.#cursorKnown = true;
      }
      const at = this.#cursor;
      const n = await body(at);
      if (advance) {
        this.#cursor = typeof at === 'bigint' ? at + BigInt(n) : at + n;
      } else {
        // An appending write leaves the kernel's offset at the end as THAT
        // write made it; a later positioned write (which appends too) does
        // not move it. So take the size now, not at the next use.
        try {
          this.#cursor = await this.#size();
        } catch {
          this.#cursorKnown = false;
        }
      }
      return n;
    };
    const p = this.#cursorTail.then(run);
    this.#cursorTail = p.then(noop, noop);
    return p;
  }

  // Not this.stat(): that waits for the mutations in flight, and the caller
  // may be one of them.
  #size(): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      fs.fstat(this.fd, (err, st) => (err ? reject(this.decorate(err)) : resolve(st.size)));
    });
  }

  #atCursor(syscall: 'aio_write', buffer: ArrayBufferView, o: OpOptions): Promise<number> {
    return this.atCursor((at) => this.#single(syscall, buffer, at, o), !this.append);
  }

  async #single(
    syscall: 'aio_read' | 'aio_write',
    buffer: ArrayBufferView,
    position: number | bigint,
    o: OpOptions,
  ): Promise<number> {
    const signal = o.signal;
    if (signal?.aborted) throw abortError(signal);
    if (this.#closing) throw this.error(EBADF, syscall);
    if (this.#fence !== undefined) {
      await this.#fence;
      if (signal?.aborted) throw abortError(signal);
      if (this.#closing) throw this.error(EBADF, syscall);
    }
    let hub: Hub | undefined;
    if (signal !== undefined) hub = this.signals.acquire(signal);
    try {
      if (!this.admission.tryTake(1)) await this.#wait(1, hub, signal, syscall);
      // Reuse an idle block from this file's pool when there is one: making
      // a native block per operation costs about a fifth of the hot path.
      const fd = this.#pick();
      let cb = this.#pool.pop();
      if (cb === undefined || !internals.retarget(cb, fd, position, buffer, o.reqprio)) {
        cb = AioCb.fromMutSlice(fd, position, buffer, o.reqprio);
      }
      try {
        const opts = hub === undefined ? undefined : { signal: hub.signal };
        return await (syscall === 'aio_read' ? cb.read(opts) : cb.write(opts));
      } catch (e) {
        throw this.decorate(e);
      } finally {
        // A pooled block keeps its last buffer referenced: only small ones.
        if (buffer.byteLength <= POOL_BUFFER_MAX && this.#pool.length < this.admission.limit && !this.#closing) {
          this.#pool.push(cb);
        }
        this.admission.leave(1);
      }
    } finally {
      if (signal !== undefined) this.signals.release(signal);
    }
  }

  /** Runs `body` holding `n` places, with the hub of `signal`. */
  async run<T>(
    n: number,
    syscall: AioSyscall,
    signal: AbortSignal | undefined,
    body: (hub: Hub | undefined) => Promise<T>,
  ): Promise<T> {
    if (signal?.aborted) throw abortError(signal);
    if (this.#closing) throw this.error(EBADF, syscall);
    let hub: Hub | undefined;
    if (signal !== undefined) hub = this.signals.acquire(signal);
    try {
      if (!this.admission.tryTake(n)) await this.#wait(n, hub, signal, syscall);
      try {
        if (signal?.aborted) throw abortError(signal);
        return await body(hub);
      } catch (e) {
        throw this.decorate(e);
      } finally {
        this.admission.leave(n);
      }
    } finally {
      if (signal !== undefined) this.signals.release(signal);
    }
  }

  async #wait(n: number, hub: Hub | undefined, signal: AbortSignal | undefined, syscall: AioSyscall): Promise<void> {
    try {
      await this.admission.wait(n, this.signals.waiters(hub));
    } catch (e) {
      if (e === kCloseReason) throw this.error(ECANCELED, syscall);
      if (signal?.aborted) throw abortError(signal);
      throw e;
    }
  }

  /** `aio_fsync` on every descriptor of the file (each covers its own queue). */
  fsync(mode: AioFsyncMode, o: OpOptions): Promise<void> {
    return this.track(
      this.run(1, 'aio_fsync', o.signal, async (hub) => {
        const opts = hub === undefined ? undefined : { signal: hub.signal };
        await Promise.all(this.fds.map((fd) => AioCb.fromFd(fd).fsync(mode, opts)));
      }),
    );
  }

  /**
   * Submits `entries` with one `lio_listio(LIO_NOWAIT)`; returns one settled
   * promise per entry. Aborting `signal` cancels the entries still queued.
   */
  list(entries: readonly ListEntry[], o: OpOptions): Promise<number>[] {
    const n = entries.length;
    const settle: { resolve: (v: number) => void; reject: (e: unknown) => void }[] = new Array(n);
    const results = entries.map(
      (_, i) =>
        new Promise<number>((resolve, reject) => {
          settle[i] = { resolve, reject };
        }),
    );
    const writes = entries.some((e) => e.op === 'write');
    const all = this.#fenced(() =>
      this.run(n, 'lio_listio', o.signal, async (hub) => {
        const cbs = entries.map((e) => this.#listCb(e, o.reqprio));
        const promises = lioListio(LioMode.LIO_NOWAIT, cbs);
        let onAbort: (() => void) | undefined;
        if (hub !== undefined) {
          onAbort = () => {
            for (const cb of cbs) if (cb.inProgress) cb.cancel();
          };
          hub.signal.addEventListener('abort', onAbort, { once: true });
        }
        try {
          await Promise.all(
            promises.map((p, i) =>
              p.then(
                (v) => settle[i]?.resolve(v),
                (e: unknown) => {
                  const cancelled = o.signal?.aborted && (e as { code?: string }).code === 'ECANCELED';
                  settle[i]?.reject(cancelled ? abortError(o.signal as AbortSignal) : this.decorate(e));
                },
              ),
            ),
          );
          this.#recycle(cbs);
        } finally {
          if (onAbort !== undefined) hub?.signal.removeEventListener('abort', onAbort);
        }
      }),
    );
    all.catch((e: unknown) => {
      for (const s of settle) s.reject(e);
    });
    if (writes) this.track(all);
    return results;
  }

  #listCb(e: ListEntry, reqprio: number): AioCb {
    const fd = this.#pick();
    const read = e.op === 'read';
    const cb = (read ? this.#readPool : this.#writePool).pop();
    if (cb !== undefined && internals.retarget(cb, fd, e.position, e.buffer, reqprio)) return cb;
    return AioCb.fromMutSlice(
      fd,
      e.position,
      e.buffer,
      reqprio,
      undefined,
      read ? LioOpcode.LIO_READ : LioOpcode.LIO_WRITE,
    );
  }

  // Gives settled list blocks back to their pool (see #single).
  #recycle(cbs: AioCb[]): void {
    if (this.#closing) return;
    for (const cb of cbs) {
      if (cb.nbytes > POOL_BUFFER_MAX) continue;
      const pool = internals.opcode(cb) === LioOpcode.LIO_READ ? this.#readPool : this.#writePool;
      if (pool.length < this.admission.limit) pool.push(cb);
    }
  }

  /**
   * A metadata call through `fs` on the descriptor, after every mutating
   * operation submitted before it; `mutating` records it as one itself.
   */
  meta<T>(syscall: AioSyscall, call: (fd: number, cb: (err: Error | null, v: T) => void) => void, mutating = false) {
    const p = this.mutationsSettled().then(() =>
      this.run(
        1,
        syscall,
        undefined,
        () =>
          new Promise<T>((resolve, reject) => {
            call(this.fd, (err, v) => (err ? reject(err) : resolve(v)));
          }),
      ),
    );
    if (!mutating) return p;
    // It runs outside AIO (libuv's pool), so glibc's queue does not order
    // it: reads and writes submitted after it wait for it (see #fenced()).
    const settled = p.then(noop, noop);
    const fence = this.#fence === undefined ? settled : Promise.all([this.#fence, settled]).then(noop);
    this.#fence = fence;
    void fence.then(() => {
      if (this.#fence === fence) this.#fence = undefined;
    });
    return this.track(p);
  }

  /** `f()` once every mutating metadata call made before it has completed. */
  #fenced<T>(f: () => Promise<T>): Promise<T> {
    const fence = this.#fence;
    return fence === undefined ? f() : fence.then(f);
  }

  stat(bigint: boolean): Promise<fs.Stats | fs.BigIntStats> {
    return this.meta('fstat', (fd, cb) => fs.fstat(fd, { bigint }, cb as (e: Error | null, s: unknown) => void));
  }

  #pick(): number {
    const fds = this.fds;
    return fds.length === 1 ? this.fd : (fds[this.#turn++ % fds.length] as number);
  }

  error(errno: number, syscall: AioSyscall): AioError {
    return new AioError(errno, syscall, undefined, this.path);
  }

  decorate(e: unknown): unknown {
    if (this.path !== undefined && e instanceof AioError && e.path === undefined) e.path = this.path;
    return e;
  }

  /**
   * Rejects the operations waiting for admission (`ECANCELED`), waits for
   * those in flight, then closes the descriptors this file owns. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    this.#closing = true;
    this.#pool.length = 0;
    this.#readPool.length = 0;
    this.#writePool.length = 0;
    this.signals.close();
    this.#closed = (async () => {
      await this.admission.idle();
      // Nothing is in flight: no request can meet a reused descriptor number.
      const owned = this.autoClose ? this.fds : this.fds.slice(1);
      await Promise.all(
        owned.map(
          (fd) =>
            new Promise<void>((resolve, reject) => {
              fs.close(fd, (err) => (err ? reject(this.decorate(err)) : resolve()));
            }),
        ),
      );
    })();
    return this.#closed;
  }

  /** Closes the owned descriptors at once; for a file collected while open (nothing is in flight). */
  closeSync(): number[] {
    this.#closing = true;
    const owned = this.autoClose ? this.fds : this.fds.slice(1);
    for (const fd of owned) {
      try {
        fs.closeSync(fd);
      } catch {
        // already closed by someone else: nothing to release
      }
    }
    return owned;
  }
}

export { AioFsyncMode };
