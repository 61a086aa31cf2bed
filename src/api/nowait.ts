// The page-cache fast path for buffered reads: policy over core/nowait.ts.
//
// A read first tries preadv2(RWF_NOWAIT) on the JavaScript thread. Bytes the
// page cache holds are copied at once, with no thread crossing; a miss (EAGAIN)
// or the uncached rest of a range goes through AIO as before.
//
// Integration contract (what AioFile must do; the functions are below):
//
// 1. One NowaitState per file, from createNowaitState(fd, { nowait, direct })
//    at open/fromFd. It is off from the start for O_DIRECT (the `direct`
//    option, or O_DIRECT found in fcntl(F_GETFL)), for nowait: false, and
//    where the addon lacks RWF_NOWAIT. Duplicated descriptors (fanout) share
//    the flags of the one checked.
// 2. Each read, after validation, in this order:
//    a. an already-aborted signal rejects (AbortError) before anything is read;
//    b. a closing file rejects with EBADF as before;
//    c. if the per-call option says nowait: false, or a write, truncate or
//       fsync submitted earlier on this file has not completed, skip to AIO
//       (readThrough() with nowait false, or plain AIO plus noteAio()). The
//       state can track those operations itself: mutationStarted(state) when
//       one is submitted, mutationSettled(state) when it settles (fulfilled or
//       rejected); tryReadInline() then refuses while any is incomplete;
//    d. readThrough(state, fd, buffer, offset, length, position, aio) returns
//       the byte count (a number, read inline) or a promise of it (AIO did all
//       or the rest). `aio(offset, length, position)` must read that subrange
//       of `buffer` through AIO and resolve to its byte count; readThrough()
//       adds the bytes already copied, so the caller sees one read, never a
//       spurious short read. A short total means end of file, as with pread.
//       Admission control (the concurrency limit) applies only inside `aio`:
//       an inline read takes no place. Returning the plain number from the
//       async read method still settles the user's promise asynchronously
//       (never a synchronous callback). Any descriptor of the file (its own
//       or a fanout duplicate) may be passed as `fd`.
// 3. Errors: a failing inline read (anything but EAGAIN) is not reported; the
//    same range goes through AIO, whose error (syscall aio_read) is the one
//    the user sees. EOPNOTSUPP, ENOSYS and ESPIPE turn the fast path off for
//    the file (stats(state).disabled says why).
// 4. Bounded: one call copies at most limits.callBytes inline; all files
//    together spend at most limits.turnBudgetNs of estimated copy time per
//    turn of the event loop (reset by a setImmediate). Past either, reads go
//    through AIO, which also lets the loop run timers and I/O when a depth-1
//    `await` loop would otherwise stay in microtasks.
// 5. stats(state) for file.stats(): inline hits, partial hits, misses, reads
//    skipped by the limits, AIO submissions.
// 6. batch: call tryReadInline() per read entry; entries with `done` resolve
//    at once, the rest (or their uncached remainders) go into one lio_listio,
//    and noteAio(state, n) counts them.
import { constants as osConstants } from 'node:os';
import { O_DIRECT } from '../core/constants.js';
import { fdFlags, HAVE_RWF_NOWAIT, preadNowait } from '../core/nowait.js';

const { EOPNOTSUPP, ENOSYS, ESPIPE } = osConstants.errno;
// Linux defines ENOTSUP as EOPNOTSUPP; elsewhere they may differ.
const ENOTSUP = osConstants.errno.ENOTSUP ?? EOPNOTSUPP;

/**
 * Limits of inline copies, process-wide. Measured on the project's 2-core VMs
 * (bench/README.md, "The page-cache fast path"): a cached 4 KiB read through
 * readThrough() costs about 2 µs of event-loop time including the caller's
 * `await`; copying runs at 2.5 GB/s under load (0.4 ns/byte) and up to
 * 14 GB/s idle. So 1 MiB costs at most about 0.4 ms, and 1 ms per turn is
 * about 500 cached 4 KiB reads or 2.5 MB.
 * @example
 * setNowaitLimits({ callBytes: 256 * 1024 });
 */
export interface NowaitLimits {
  /** Largest read tried inline; larger reads go through AIO. @default 1048576 */
  readonly callBytes: number;
  /** Estimated inline time allowed per event-loop turn, all files together. @default 1000000 (1 ms) */
  readonly turnBudgetNs: number;
  /** Estimated fixed cost of one inline read. @default 2000 */
  readonly callCostNs: number;
  /** Estimated copy cost per byte. @default 0.4 */
  readonly byteCostNs: number;
  /**
   * Estimated extra cost of a miss: `preadv2` then starts the kernel's read of
   * the page on this thread. Measured on cold random 4 KiB reads: mean
   * 11.5 µs at depth 64 (p50 5.8, p90 30), 37 µs at depth 1 (where only one
   * miss happens per turn anyway). @default 12000
   */
  readonly missCostNs: number;
}

const DEFAULT_LIMITS: NowaitLimits = Object.freeze({
  callBytes: 1 << 20,
  turnBudgetNs: 1_000_000,
  callCostNs: 2000,
  byteCostNs: 0.4,
  missCostNs: 12_000,
});

let limits: NowaitLimits = DEFAULT_LIMITS;

/**
 * Changes the process-wide limits of inline reads (omitted fields keep their
 * value); with no argument, restores the defaults.
 * @throws {RangeError} for a negative or non-finite value
 * @example
 * setNowaitLimits({ turnBudgetNs: 500_000 }); // at most about 0.5 ms per turn
 */
export function setNowaitLimits(next?: Partial<NowaitLimits>): NowaitLimits {
  if (next === undefined) {
    limits = DEFAULT_LIMITS;
    return limits;
  }
  const merged = { ...limits, ...next };
  for (const [k, v] of Object.entries(merged)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new RangeError(`limits.${k} must be a finite number >= 0, got ${String(v)}`);
    }
  }
  limits = Object.freeze(merged);
  return limits;
}

// ---- the per-turn budget, shared by every file ----
let spentNs = 0;
let resetScheduled = false;
const resetTurn = (): void => {
  spentNs = 0;
  resetScheduled = false;
};

function charge(length: number): boolean {
  const cost = limits.callCostNs + length * limits.byteCostNs;
  if (spentNs + cost > limits.turnBudgetNs) return false;
  spentNs += cost;
  if (!resetScheduled) {
    resetScheduled = true;
    // Check phase of this loop iteration (or the next): the loop has moved on.
    setImmediate(resetTurn).unref();
  }
  return true;
}

// The read itself, replaceable by tests (nowaitInternals).
type Pread = (fd: number, view: ArrayBufferView, position: number | bigint, offset: number, length: number) => number;
let pread: Pread = preadNowait;

/**
 * What one file's fast path did, for `file.stats()`.
 * @example
 * const { inlineHits, misses } = stats(state);
 */
export interface NowaitStats {
  /** Reads served entirely from the page cache. */
  readonly inlineHits: number;
  /** Reads whose first part was cached: copied inline, the rest through AIO. */
  readonly inlinePartial: number;
  /** Bytes copied inline. */
  readonly inlineBytes: number;
  /** Reads tried inline that found nothing cached (EAGAIN) or failed. */
  readonly misses: number;
  /** Reads not tried: over the per-call cap, over the turn's budget, or behind an incomplete write/truncate/fsync. */
  readonly skipped: number;
  /** Operations submitted through AIO (each read or remainder, and what the caller counted with `noteAio`). */
  readonly aioSubmissions: number;
  /** Why the fast path is off for this file, or undefined while it is on. */
  readonly disabled: string | undefined;
}

/**
 * Per-file state of the fast path; create it with {@link createNowaitState}.
 * Fields are read-only outside this module.
 */
export interface NowaitState {
  /** Why the fast path is off, or undefined while it is on. */
  readonly disabled: string | undefined;
  /** Writes, truncates and fsyncs submitted and not yet settled ({@link mutationStarted}). */
  readonly mutations: number;
}

interface State extends NowaitState {
  disabled: string | undefined;
  mutations: number;
  inlineHits: number;
  inlinePartial: number;
  inlineBytes: number;
  misses: number;
  skipped: number;
  aioSubmissions: number;
}

/**
 * Options of {@link createNowaitState}, from the file's open options.
 * @example
 * createNowaitState(fd, { nowait: true, direct: false });
 */
export interface NowaitOptions {
  /** Try the page cache first for buffered reads. @default true */
  readonly nowait?: boolean;
  /** The file was opened with `O_DIRECT` (also detected from the descriptor). @default false */
  readonly direct?: boolean;
}

/**
 * The fast-path state of one file. Off for `O_DIRECT` descriptors (the flag
 * given or found with `fcntl(F_GETFL)`), for `nowait: false`, and where the
 * addon was built without `RWF_NOWAIT`.
 * @throws {TypeError} when `options.nowait` is not a boolean
 * @example
 * const state = createNowaitState(fd, { nowait: options.nowait, direct: options.direct });
 */
export function createNowaitState(fd: number, options: NowaitOptions = {}): NowaitState {
  const { nowait = true, direct = false } = options;
  if (typeof nowait !== 'boolean') throw new TypeError(`options.nowait must be a boolean, got ${typeof nowait}`);
  let disabled: string | undefined;
  if (!nowait) disabled = 'nowait: false';
  else if (direct) disabled = 'O_DIRECT';
  else if (!HAVE_RWF_NOWAIT) disabled = 'ENOSYS: built without preadv2(RWF_NOWAIT)';
  else if (O_DIRECT !== undefined) {
    let flags = 0;
    try {
      flags = fdFlags(fd);
    } catch {
      // A bad descriptor: every read will fail through AIO, which reports it.
      disabled = 'EBADF';
    }
    if ((flags & O_DIRECT) !== 0) disabled = 'O_DIRECT';
  }
  const state: State = {
    disabled,
    mutations: 0,
    inlineHits: 0,
    inlinePartial: 0,
    inlineBytes: 0,
    misses: 0,
    skipped: 0,
    aioSubmissions: 0,
  };
  return state;
}

/**
 * Result of an inline read that copied something.
 * @example
 * const r = tryReadInline(state, fd, buf, 0, buf.length, pos);
 * if (r?.done) return r.bytesRead;
 */
export interface InlineRead {
  /** Bytes copied into `buffer` at `offset`. */
  readonly bytesRead: number;
  /**
   * True: the read is complete (`bytesRead === length`, or end of file came
   * first). False: the bytes from `offset + bytesRead` on were not cached; the
   * caller reads `length - bytesRead` more at `position + bytesRead` through
   * AIO and adds the two counts.
   */
  readonly done: boolean;
}

/**
 * Tries to serve `buffer[offset, offset + length)` from file `position` out of
 * the page cache, on the calling thread, without waiting for a device.
 * Returns undefined when nothing was copied (fast path off, over a limit,
 * behind an incomplete mutation, not cached, or an error): the whole read
 * goes through AIO. Arguments must already be validated (integers, in range).
 * The caller must not call it while a write, truncate or fsync submitted
 * earlier on the same file is incomplete (see {@link mutationStarted}), and
 * must reject an already-aborted signal before calling it.
 * @example
 * const r = tryReadInline(state, fd, buf, 0, 4096, 8192);
 * const n = r === undefined ? await aioRead(0, 4096, 8192) : r.done ? r.bytesRead : r.bytesRead + (await aioRead(r.bytesRead, 4096 - r.bytesRead, 8192 + r.bytesRead));
 */
export function tryReadInline(
  state: NowaitState,
  fd: number,
  buffer: ArrayBufferView,
  offset: number,
  length: number,
  position: number | bigint,
): InlineRead | undefined {
  const s = state as State;
  if (s.disabled !== undefined) return undefined;
  if (s.mutations > 0 || length > limits.callBytes || !charge(length)) {
    s.skipped++;
    return undefined;
  }
  let got = 0;
  // A short count is either the end of the file or the end of what is cached:
  // read on until EAGAIN (not cached: the rest goes through AIO) or 0 (end of
  // file: a true short read, as pread reports it).
  for (;;) {
    const pos = got === 0 ? position : typeof position === 'bigint' ? position + BigInt(got) : position + got;
    const r = pread(fd, buffer, pos, offset + got, length - got);
    if (r > 0) {
      got += r;
      if (got === length) break;
      continue;
    }
    if (r === 0) break;
    // Properties of the file or platform, not of this read: stop trying.
    if (r === -EOPNOTSUPP || r === -ENOTSUP || r === -ENOSYS || r === -ESPIPE) {
      const name = r === -ESPIPE ? 'ESPIPE' : r === -ENOSYS ? 'ENOSYS' : 'EOPNOTSUPP';
      s.disabled = `${name}: preadv2(RWF_NOWAIT) refused for this file`;
    }
    // EAGAIN, or an error that AIO will report with its own syscall name.
    // A miss submitted the page's read from this thread: charge for it (it
    // may overdraw the budget; the turn then has nothing left).
    spentNs += limits.missCostNs;
    if (got === 0) {
      s.misses++;
      return undefined;
    }
    s.inlinePartial++;
    s.inlineBytes += got;
    return { bytesRead: got, done: false };
  }
  s.inlineHits++;
  s.inlineBytes += got;
  return { bytesRead: got, done: true };
}

/**
 * One read with the fast path: inline what the page cache holds, then `aio`
 * for the rest (or all of it). Returns a number when the read completed
 * inline, else a promise. `aio(offset, length, position)` reads that subrange
 * of `buffer` through AIO and resolves to its byte count.
 * @param nowait false skips the fast path for this call (the per-call option)
 * @example
 * const n = await readThrough(state, fd, buf, 0, buf.length, pos, (o, l, p) => aioRead(buf.subarray(o, o + l), p));
 */
export function readThrough(
  state: NowaitState,
  fd: number,
  buffer: ArrayBufferView,
  offset: number,
  length: number,
  position: number | bigint,
  aio: (offset: number, length: number, position: number | bigint) => Promise<number>,
  nowait = true,
): number | Promise<number> {
  const r = nowait && length > 0 ? tryReadInline(state, fd, buffer, offset, length, position) : undefined;
  if (r === undefined) {
    (state as State).aioSubmissions++;
    return aio(offset, length, position);
  }
  if (r.done) return r.bytesRead;
  (state as State).aioSubmissions++;
  const got = r.bytesRead;
  const rest = typeof position === 'bigint' ? position + BigInt(got) : position + got;
  return aio(offset + got, length - got, rest).then((n) => got + n);
}

/**
 * Counts `n` operations the caller submitted through AIO itself (reads that
 * bypassed {@link readThrough}, batch entries), for {@link stats}.
 * @example
 * noteAio(state, entries.length);
 */
export function noteAio(state: NowaitState, n = 1): void {
  (state as State).aioSubmissions += n;
}

/**
 * Records a write, truncate or fsync submitted on the file: reads do not take
 * the fast path until it settles ({@link mutationSettled}), so a read never
 * overtakes it.
 * @example
 * mutationStarted(state);
 * try { await aioWrite(); } finally { mutationSettled(state); }
 */
export function mutationStarted(state: NowaitState): void {
  (state as State).mutations++;
}

/**
 * The matching end of {@link mutationStarted}, on every settle path.
 * @example
 * mutationSettled(state);
 */
export function mutationSettled(state: NowaitState): void {
  const s = state as State;
  if (s.mutations > 0) s.mutations--;
}

/**
 * A snapshot of the file's fast-path counters, for `file.stats()`.
 * @example
 * console.log(stats(state)); // { inlineHits: 10, misses: 1, aioSubmissions: 1, ... }
 */
export function stats(state: NowaitState): NowaitStats {
  const s = state as State;
  return {
    inlineHits: s.inlineHits,
    inlinePartial: s.inlinePartial,
    inlineBytes: s.inlineBytes,
    misses: s.misses,
    skipped: s.skipped,
    aioSubmissions: s.aioSubmissions,
    disabled: s.disabled,
  };
}

/** @internal Test seams: replace the read, end the turn now. */
export const nowaitInternals = {
  setPread(fn: Pread | undefined): void {
    pread = fn ?? preadNowait;
  },
  resetTurn,
  spentNs: (): number => spentNs,
};
