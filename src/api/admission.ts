// Admission and cancellation for one file: how many operations may be in
// flight, who waits, and how one AbortSignal reaches many operations.
import { setMaxListeners } from 'node:events';
import PQueue from 'p-queue';

/** Reason the admission line rejects with when the file closes. */
export const kCloseReason = Symbol('posix-aio.closing');

/**
 * The internal signals standing for one user signal on one file.
 * `signal` goes to the AIO blocks (aborting it calls aio_cancel on those in
 * flight); `queue` goes to the admission line (aborting it removes waiters).
 */
export interface Hub {
  readonly signal: AbortSignal;
  readonly queue: AbortSignal;
}

interface HubEntry extends Hub {
  readonly ctl: AbortController;
  readonly queueCtl: AbortController;
  readonly onAbort: () => void;
  refs: number;
}

function quiet(ctl: AbortController): AbortController {
  // Every operation of this file that shares the user's signal listens here;
  // the user's own signal carries one listener per file.
  setMaxListeners(0, ctl.signal);
  return ctl;
}

/**
 * One abort listener per (file, user signal), fanning out to the file's
 * operations that use it. Node 20's `AbortSignal.any` keeps every dependant
 * for the source's lifetime; a hub is dropped as soon as its last operation
 * settles, so a long-lived signal costs nothing once its operations are done.
 */
export class Signals {
  readonly #hubs = new Map<AbortSignal, HubEntry>();
  // The admission signal of operations without a user signal: aborted at close.
  readonly #closing = quiet(new AbortController());

  /** The admission-line signal of an operation without a user signal. */
  get closing(): AbortSignal {
    return this.#closing.signal;
  }

  /** Takes a reference on the hub of `signal` (not aborted); pair with {@link release}. */
  acquire(signal: AbortSignal): Hub {
    let hub = this.#hubs.get(signal);
    if (hub === undefined) {
      const ctl = quiet(new AbortController());
      const queueCtl = quiet(new AbortController());
      const onAbort = () => {
        queueCtl.abort(signal.reason);
        ctl.abort(signal.reason);
      };
      hub = { ctl, queueCtl, signal: ctl.signal, queue: queueCtl.signal, onAbort, refs: 0 };
      this.#hubs.set(signal, hub);
      signal.addEventListener('abort', onAbort, { once: true });
    }
    hub.refs++;
    return hub;
  }

  release(signal: AbortSignal): void {
    const hub = this.#hubs.get(signal);
    if (hub === undefined || --hub.refs > 0) return;
    this.#hubs.delete(signal);
    signal.removeEventListener('abort', hub.onAbort);
  }

  /** Removes every waiter from the admission line (operations in flight continue). */
  close(): void {
    this.#closing.abort(kCloseReason);
    for (const hub of this.#hubs.values()) hub.queueCtl.abort(kCloseReason);
  }

  /** Hubs alive (tests check that they do not accumulate). */
  get size(): number {
    return this.#hubs.size;
  }
}

/**
 * The concurrency limit. An operation takes places while they are free and
 * nobody waits; otherwise it waits in a p-queue of concurrency 1 whose head
 * alone waits for free places, and whose per-task `signal` removes a waiter
 * that is aborted or closed.
 *
 * Why not one p-queue task per operation with concurrency = limit: an
 * operation that finds a free place skips p-queue entirely (no task object,
 * no event emission), and a batch of n entries takes n places at once, which
 * p-queue's task count cannot express. Measured on 2026-12-02 with
 * scripts/read-depth64.mjs (200,000 4 KiB cached reads at depth 64, one
 * file): 204k/195k reads/s at 622cc53 (AbortSignal.any per waiter), 238k/213k
 * with this admission (alternating runs, shared 2-core machine).
 *
 * Known cost: p-queue removes an aborted waiter with a linear search, so
 * aborting n waiters at once costs O(n^2); 10,000 take well under a second.
 */
export class Admission {
  readonly limit: number;
  #active = 0;
  readonly #line = new PQueue({ concurrency: 1 });
  #nextPlace: (() => boolean) | undefined;
  #idle: (() => void) | undefined;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Places taken by operations in flight. */
  get active(): number {
    return this.#active;
  }

  /** Takes `n` places when free and nobody waits. */
  tryTake(n: number): boolean {
    if (this.#line.size === 0 && this.#line.pending === 0 && this.#active + n <= this.limit) {
      this.#active += n;
      return true;
    }
    return false;
  }

  /** Waits in line for `n` places; rejects with `queue.reason` when `queue` aborts first. */
  wait(n: number, queue: AbortSignal): Promise<void> {
    return this.#line.add(
      ({ signal: s }) =>
        new Promise<void>((resolve, reject) => {
          // A request larger than the limit runs alone rather than never.
          const take = () => {
            if (this.#active + n > this.limit && this.#active > 0) return false;
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
      { signal: queue },
    );
  }

  leave(n: number): void {
    this.#active -= n;
    this.#nextPlace?.();
    if (this.#active === 0 && this.#idle !== undefined) {
      const idle = this.#idle;
      this.#idle = undefined;
      idle();
    }
  }

  /** Resolves once no operation holds a place. */
  idle(): Promise<void> {
    if (this.#active === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const prev = this.#idle;
      this.#idle = () => {
        prev?.();
        resolve();
      };
    });
  }
}
