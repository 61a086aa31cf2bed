// List submission (lio_listio), waiting (aio_suspend), aio_cancel(fd, NULL)
// and aio_init, over the same native engine as AioCb.

import { AioCb, internals } from './aiocb.js';
import { native } from './binding.js';
import { type AioCancelStat, LioMode, LioOpcode } from './constants.js';
import { AioError, captureSite } from './errors.js';
import { giveSlot, kComplete, takeSlot } from './registry.js';
import { checkSignal, SigevNone, type SigevNotify, sigevCode, validateSigev } from './sigevent.js';
import { describe, validateFd, validateInt } from './validate.js';

const EAGAIN = 11;
const RESUBMIT_DELAY_MS = 1;

function validateList(list: unknown, fn: string): (AioCb | null)[] {
  if (!Array.isArray(list)) throw new TypeError(`${fn}: list must be an array, got ${describe(list)}`);
  for (const cb of list) {
    if (cb !== null && !(cb instanceof AioCb)) {
      throw new TypeError(`${fn}: list entries must be AioCb or null, got ${describe(cb)}`);
    }
  }
  return list as (AioCb | null)[];
}

/**
 * `lio_listio`: submits every entry with one call and returns one promise per
 * entry, in list order (`null` and `LIO_NOP` entries resolve to 0). Lists of
 * more than 1024 entries go to libc in chunks of 1024, and a list-level
 * notification goes with the last chunk: it fires once that chunk is done.
 *
 * `LIO_NOWAIT` returns at once. `LIO_WAIT` returns once every entry has
 * completed, so `aioReturn()` works at once on each.
 *
 * @param sigevNotify list-level notification, fired once the (last chunk of the) list is done @default SigevNone
 * @throws {AioError} `EIO` (syscall `lio_listio`) in `LIO_WAIT` mode when an entry failed;
 *   `EINVAL` for an unknown mode; `EAGAIN` (nothing submitted) for a list-level signal while
 *   one of the list's descriptors holds requests beyond its window (README: "Many requests on
 *   one descriptor")
 * @throws {TypeError} for a list that is not an array of AioCb or null
 * @throws {AioStateError} `ERR_AIO_IN_PROGRESS` when an entry is already in progress
 * @example
 * const [w, r] = await Promise.all(lioListio(LioMode.LIO_NOWAIT, [wcb, rcb]));
 */
export function lioListio(
  mode: LioMode,
  list: (AioCb | null)[],
  sigevNotify: SigevNotify = SigevNone,
): Promise<number>[] {
  const site = captureSite(lioListio);
  if (typeof mode !== 'number')
    throw new TypeError(`lioListio: mode must be LioMode.LIO_WAIT or LIO_NOWAIT, got ${describe(mode)}`);
  if (mode !== LioMode.LIO_WAIT && mode !== LioMode.LIO_NOWAIT) throw new AioError(22, 'lio_listio', site);
  if (!Array.isArray(list)) throw new TypeError(`lioListio: list must be an array, got ${describe(list)}`);
  const entries = list as (AioCb | null)[];
  const sev = validateSigev(sigevNotify);
  checkSignal(sev);

  // Each entry is checked and begun (registry slot; its promise here, or
  // by the native call for thread-notified ones) in one pass. A throw, here
  // or from the native call, undoes everything: every block as before.
  const n = entries.length;
  const promises: Promise<number>[] = new Array(n);
  const ids = new Uint32Array(n);
  const slots = new Uint32Array(n);
  internals.enlistAll(entries, site, ids, slots, promises);
  let rc: 0 | number | number[];
  try {
    rc = native.lioListio(
      mode,
      ids,
      slots,
      sigevCode(sev),
      sev.kind === 'signal' ? sev.signal : 0,
      sev.kind === 'signal' ? sev.value : 0,
      promises,
    );
  } catch (e) {
    // A native refusal (an entry in progress there): every block as before.
    internals.abandonAll(entries);
    throw e;
  }
  if (typeof rc === 'number' && rc < 0) {
    // Failed as a whole (no thread or descriptor for the engine, a signal
    // nobody handles): nothing was submitted, every block is as it was.
    internals.abandonAll(entries);
    throw new AioError(-rc, 'lio_listio', site);
  }
  let err = 0;
  if (rc !== 0) {
    rc = rc as number[];
    err = rc[0] as number;
    // Entries libc never enqueued come back completed with their error.
    for (const i of rc.slice(1)) {
      const cb = entries[i] as AioCb;
      if (mode === LioMode.LIO_NOWAIT && internals.native(cb).error() === EAGAIN) resubmitLater(cb, site);
      else internals.observe(cb);
    }
  }
  if (mode === LioMode.LIO_WAIT) {
    for (const cb of entries) if (cb !== null) internals.observe(cb);
  }
  if (err !== 0 && !(err === EAGAIN && mode === LioMode.LIO_NOWAIT)) {
    // The caller gets the throw, not the array: its entries' rejections are
    // reported through each AioCb's error() and aioReturn() instead.
    for (const p of promises) p.catch(() => {});
    throw new AioError(err, 'lio_listio', site);
  }
  return promises;
}

function resubmitLater(cb: AioCb, site: { stack?: string }, delay = RESUBMIT_DELAY_MS): void {
  setTimeout(() => {
    const rc = internals.resubmit(cb);
    if (rc === EAGAIN) resubmitLater(cb, site, Math.min(delay * 2, 100));
    else if (rc !== 0) internals.fail(cb, rc, internals.opcode(cb) === LioOpcode.LIO_READ ? 'aio_read' : 'aio_write');
  }, delay).unref?.();
}

/**
 * `aio_suspend`: resolves once at least one listed block is no longer in
 * progress (at once when one already is, or when the list holds none). The
 * wait happens on the engine's thread; the event loop never blocks.
 * @param timeoutMs give up after this many milliseconds @default no limit
 * @throws rejects with {@link AioError} `EAGAIN` (syscall `aio_suspend`) on timeout
 * @example
 * const cb = AioCb.fromMutSlice(fd, 0, Buffer.alloc(4096), 0, SigevNone);
 * const read = cb.read();
 * await aioSuspend([cb], 1000);
 * await read; // settled: completion was observed
 */
export function aioSuspend(list: (AioCb | null)[], timeoutMs?: number): Promise<void> {
  let cbs: AioCb[];
  try {
    cbs = validateList(list, 'aioSuspend').filter((cb): cb is AioCb => cb !== null);
    if (timeoutMs !== undefined) {
      if (typeof timeoutMs !== 'number')
        throw new TypeError(`aioSuspend: timeoutMs must be a number, got ${describe(timeoutMs)}`);
      if (!(timeoutMs >= 0) || !Number.isFinite(timeoutMs))
        throw new RangeError(`aioSuspend: timeoutMs must be a finite number >= 0, got ${timeoutMs}`);
    }
  } catch (e) {
    return Promise.reject(e);
  }
  if (cbs.length === 0 || cbs.some((cb) => !cb.inProgress)) return Promise.resolve();
  const site = captureSite(aioSuspend);
  return new Promise<void>((resolve, reject) => {
    const waiter = {
      [kComplete](result: number): void {
        giveSlot(slot);
        // Observing settles the promises of SigevNone and SigevSignal blocks.
        for (const cb of cbs) internals.observe(cb);
        if (result === 0) resolve();
        else reject(new AioError(result, 'aio_suspend', site));
      },
    };
    const slot = takeSlot(waiter);
    native.aioSuspend(
      cbs.map((cb) => internals.native(cb)),
      timeoutMs ?? -1,
      slot,
    );
  });
}

/**
 * `aio_cancel(fd, NULL)`: cancels every queued request on `fd`, this
 * process's included, and those this environment holds beyond its
 * per-descriptor window (README: "Many requests on one descriptor"; the
 * requests another Worker holds are not reached).
 * @throws {AioError} `EBADF` for a bad descriptor
 * @example
 * if (aioCancelAll(fd) === AioCancelStat.AioNotCanceled) {
 *   // some requests were running: wait for them before closing fd
 * }
 */
export function aioCancelAll(fd: number): AioCancelStat {
  validateFd(fd);
  const st = native.aioCancelAll(fd);
  if (st < 0) throw new AioError(-st, 'aio_cancel', captureSite(aioCancelAll));
  return st as AioCancelStat;
}

/**
 * glibc AIO tunables (`aio_init`).
 * @example
 * aioInit({ threads: 64, num: 256, idleTime: 5 });
 */
export interface AioInitOptions {
  /** Most worker threads. @default 20 */
  readonly threads?: number;
  /** Expected simultaneous requests. @default 64 */
  readonly num?: number;
  /** Seconds an idle worker waits before exiting. @default 1 */
  readonly idleTime?: number;
}

/**
 * Sets glibc's AIO tunables for the pool the library starts at its first
 * request (with one more thread than `threads`: the engine keeps one worker
 * for its wake-up anchor, so every thread asked for stays available to
 * requests). Call it before any operation.
 * @returns true when applied; false once the pool has started, and off glibc
 * @throws {TypeError | RangeError} for options that are not an object, or
 *   values that are not integers in range
 * @example aioInit({ threads: 64, num: 256 })
 */
export function aioInit(options: AioInitOptions = {}): boolean {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`aioInit: options must be an object, got ${describe(options)}`);
  const threads = validateInt(options.threads ?? 20, 'threads', 1, 65536);
  const num = validateInt(options.num ?? 64, 'num', 1, 1 << 20);
  const idle = validateInt(options.idleTime ?? 1, 'idleTime', 0, 1 << 30);
  return native.aioInit(threads, num, idle);
}
