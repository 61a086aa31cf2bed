// Admission and cancellation for one file: how many operations may be in
// flight, who waits, and how one AbortSignal reaches many operations.
import { setMaxListeners } from 'node:events';
import PQueue, { type QueueAddOptions } from 'p-queue';

type RunFunction = () => Promise<unknown>;

/** Reason the admission line rejects with when the file closes. */
export const kCloseReason = Symbol('posix-aio.closing');

/**
 * The internal signal standing for one user signal on one file: `signal`
 * goes to the AIO blocks in flight (aborting it calls aio_cancel on them);
 * `waiters` holds one controller per operation waiting for admission, whose
 * signal is that operation's p-queue task signal.
 */
export interface Hub {
  readonly signal: AbortSignal;
  readonly waiters: Set<AbortController>;
}

interface HubEntry extends Hub {
  readonly ctl: AbortController;
  readonly onAbort: () => void;
  refs: number;
}

/**
 * One abort listener per (file, user signal), fanning out to the file's
 * operations that use it. Node 20's `AbortSignal.any` keeps every dependant
 * for the source's lifetime; a hub is dropped as soon as its last operation
 * settles, so a long-lived signal costs nothing once its operations are done.
 *
 * A waiting operation gets its own AbortController for p-queue rather than
 * sharing one signal: Node's EventTarget scans its listeners on every add
 * and remove, so n waiters listening on one signal cost O(n^2) to queue and
 * to abort (2 s for 20,000 here); with one listener each, 100,000 waiters
 * queue and abort in linear time.
 */
export class Signals {
  readonly #hubs = new Map<AbortSignal, HubEntry>();
  // Waiters of operations without a user signal: aborted at close.
  readonly #waiters = new Set<AbortController>();

  /** Takes a reference on the hub of `signal` (not aborted); pair with {@link release}. */
  acquire(signal: AbortSignal): Hub {
    let hub = this.#hubs.get(signal);
    if (hub === undefined) {
      const ctl = new AbortController();
      // Every operation of this file in flight with the user's signal listens
      // here (at most the concurrency limit); the user's signal carries one
      // listener per file.
      setMaxListeners(0, ctl.signal);
      const waiters = new Set<AbortController>();
      const onAbort = () => {
        for (const w of waiters) w.abort(signal.reason);
        ctl.abort(signal.reason);
      };
      hub = { ctl, signal: ctl.signal, waiters, onAbort, refs: 0 };
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

  /** The waiter set of `hub`, or of the operations without a signal. */
  waiters(hub: Hub | undefined): Set<AbortController> {
    return hub?.waiters ?? this.#waiters;
  }

  /** Removes every waiter from the admission line (operations in flight continue). */
  close(): void {
    for (const w of this.#waiters) w.abort(kCloseReason);
    for (const hub of this.#hubs.values()) for (const w of hub.waiters) w.abort(kCloseReason);
  }

  /** Hubs alive (tests check that they do not accumulate). */
  get size(): number {
    return this.#hubs.size;
  }
}

/**
 * The waiting line's storage: first in, first out, with O(1) removal of an
 * aborted waiter (p-queue's default priority queue removes with a linear
 * search, so aborting n waiters at once would cost O(n^2): minutes for
 * 100,000). Removed entries are skipped when they reach the head.
 */
class Line {
  #runs: ({ id: string; run: RunFunction } | undefined)[] = [];
  #head = 0;
  readonly #removed = new Set<string>();
  size = 0;

  enqueue(run: RunFunction, options?: Partial<QueueAddOptions>): void {
    this.#runs.push({ id: options?.id ?? '', run });
    this.size++;
  }

  dequeue(): RunFunction | undefined {
    while (this.#head < this.#runs.length) {
      const entry = this.#runs[this.#head];
      this.#runs[this.#head++] = undefined;
      if (entry === undefined) continue;
      if (this.#removed.delete(entry.id)) continue;
      this.size--;
      this.#compact();
      return entry.run;
    }
    return undefined;
  }

  remove(id: string): void {
    if (this.size === 0) return;
    this.#removed.add(id);
    this.size--;
    if (this.size === 0) {
      this.#runs = [];
      this.#head = 0;
      this.#removed.clear();
    }
  }

  filter(): RunFunction[] {
    const live: RunFunction[] = [];
    for (let i = this.#head; i < this.#runs.length; i++) {
      const entry = this.#runs[i];
      if (entry !== undefined && !this.#removed.has(entry.id)) live.push(entry.run);
    }
    return live;
  }

  setPriority(): void {
    throw new Error('the admission line has no priorities');
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#runs.length) {
      this.#runs = this.#runs.slice(this.#head);
      this.#head = 0;
    }
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

 */
export class Admission {
  readonly limit: number;
  #active = 0;
  readonly #line = new PQueue({ concurrency: 1, queueClass: Line });
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
