// Admission and cancellation for one file: how many operations may be in
// flight, who waits, and how one AbortSignal reaches many operations.
import { setMaxListeners } from 'node:events';
import PQueue, { type Queue, type QueueAddOptions } from 'p-queue';

type RunFunction = () => Promise<unknown>;

/** Reason the admission line rejects with when the file closes. */
export const kCloseReason = Symbol('posix-aio.closing');

/**
 * An operation waiting for admission. {@link Signals} calls `cancel` when the
 * operation's signal aborts or the file closes: it leaves the line at once
 * and its wait rejects with `reason`.
 */
export interface Waiter {
  cancel(reason: unknown): void;
}

/**
 * The internal signal standing for one user signal on one file: `signal`
 * goes to the AIO blocks in flight (aborting it calls aio_cancel on them);
 * `waiters` holds the operations of this file waiting for admission with
 * that user signal.
 */
export interface Hub {
  readonly signal: AbortSignal;
  readonly waiters: Set<Waiter>;
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
 * Waiting operations are plain {@link Waiter}s cancelled by a call, not
 * AbortSignals:
 * - not one signal shared by the waiters: Node's EventTarget scans its
 *   listeners on every add and remove, so n waiters listening on one signal
 *   cost O(n^2) to queue and to abort (2 s for 20,000 here);
 * - not one AbortController per waiter (as before): each abort() dispatches
 *   a trusted Event, and Node records every trusted Event in a WeakSet
 *   (lib/internal/event_target.js, isTrustedSet) whose backing table grows
 *   with the Events created between two garbage collections and never
 *   shrinks. Aborting 100,000 waiters in one go left that table at 1 MiB on
 *   Node 20 and 2 to 4 MiB on Node 24 for the life of the process, 8 MiB for
 *   400,000: heap growth proportional to the largest abort seen.
 * So an abort costs one Event per (file, signal), whatever the number of
 * operations waiting.
 */
export class Signals {
  readonly #hubs = new Map<AbortSignal, HubEntry>();
  // Waiters of operations without a user signal: cancelled at close.
  readonly #waiters = new Set<Waiter>();

  /** Takes a reference on the hub of `signal` (not aborted); pair with {@link release}. */
  acquire(signal: AbortSignal): Hub {
    let hub = this.#hubs.get(signal);
    if (hub === undefined) {
      const ctl = new AbortController();
      // Every operation of this file in flight with the user's signal listens
      // here (at most the concurrency limit); the user's signal carries one
      // listener per file.
      setMaxListeners(0, ctl.signal);
      const waiters = new Set<Waiter>();
      const onAbort = () => {
        // cancel() deletes the waiter from the set: safe while iterating.
        for (const w of waiters) w.cancel(signal.reason);
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
  waiters(hub: Hub | undefined): Set<Waiter> {
    return hub?.waiters ?? this.#waiters;
  }

  /** Removes every waiter from the admission line (operations in flight continue). */
  close(): void {
    for (const w of this.#waiters) w.cancel(kCloseReason);
    for (const hub of this.#hubs.values()) for (const w of hub.waiters) w.cancel(kCloseReason);
  }

  /** Hubs alive (tests check that they do not accumulate). */
  get size(): number {
    return this.#hubs.size;
  }
}

/** A place in the waiting line: p-queue's task for it, undefined once it has left. */
interface Slot {
  run: RunFunction | undefined;
}

interface LineOptions extends QueueAddOptions {
  readonly slot: Slot;
}

/**
 * The waiting line's storage: first in, first out, with O(1) removal of a
 * cancelled waiter (p-queue's default priority queue removes with a linear
 * search, so cancelling n waiters at once would cost O(n^2): minutes for
 * 100,000). A cancelled slot is emptied in place and skipped when it
 * reaches the head. p-queue hands each task's options to enqueue(), which
 * is how a slot reaches the line.
 */
class Line implements Queue<RunFunction, LineOptions> {
  #slots: (Slot | undefined)[] = [];
  #head = 0;
  size = 0;

  enqueue(run: RunFunction, options?: Partial<LineOptions>): void {
    const slot = options?.slot ?? { run };
    slot.run = run;
    this.#slots.push(slot);
    this.size++;
  }

  dequeue(): RunFunction | undefined {
    while (this.#head < this.#slots.length) {
      const slot = this.#slots[this.#head];
      this.#slots[this.#head++] = undefined;
      const run = slot?.run;
      if (slot === undefined || run === undefined) continue;
      // p-queue starts what it dequeues: the slot is no longer in line.
      slot.run = undefined;
      this.size--;
      this.#compact();
      return run;
    }
    return undefined;
  }

  /** Takes `slot`, still in line, out of it. */
  drop(slot: Slot): void {
    slot.run = undefined;
    if (--this.size === 0) {
      this.#slots = [];
      this.#head = 0;
    }
  }

  filter(): RunFunction[] {
    const live: RunFunction[] = [];
    for (let i = this.#head; i < this.#slots.length; i++) {
      const run = this.#slots[i]?.run;
      if (run !== undefined) live.push(run);
    }
    return live;
  }

  setPriority(): void {
    throw new Error('the admission line has no priorities');
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#slots.length) {
      this.#slots = this.#slots.slice(this.#head);
      this.#head = 0;
    }
  }
}

/**
 * The concurrency limit. An operation takes places while they are free and
 * nobody waits; otherwise it waits in a p-queue of concurrency 1 whose head
 * alone waits for free places. A waiter that is aborted or closed leaves
 * through its {@link Waiter.cancel}: out of the line if still in it, or
 * letting the next one in if at the head.
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
  // The line p-queue keeps its waiting tasks in (built by p-queue, once).
  #store: Line | undefined;
  readonly #line: PQueue<Line, LineOptions>;
  #nextPlace: (() => boolean) | undefined;
  #idle: (() => void) | undefined;

  constructor(limit: number) {
    this.limit = limit;
    const admission = this;
    this.#line = new PQueue<Line, LineOptions>({
      concurrency: 1,
      queueClass: class extends Line {
        constructor() {
          super();
          admission.#store = this;
        }
      },
    });
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

  /**
   * Waits in line for `n` places, as a member of `waiters` until it has
   * them; rejects with the reason given to its {@link Waiter.cancel}.
   */
  wait(n: number, waiters: Set<Waiter>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // The head's p-queue task settles when it takes its places or is
      // cancelled; the task never rejects.
      let release: (() => void) | undefined;
      const take = () => {
        // A request larger than the limit runs alone rather than never.
        if (this.#active + n > this.limit && this.#active > 0) return false;
        this.#active += n;
        this.#nextPlace = undefined;
        waiters.delete(waiter);
        release?.();
        resolve();
        return true;
      };
      const waiter: Slot & Waiter = {
        run: undefined,
        cancel: (reason: unknown) => {
          waiters.delete(waiter);
          if (waiter.run !== undefined) {
            // Still in line: p-queue never starts it, and its promise for
            // the task (never settled) goes with the slot.
            (this.#store as Line).drop(waiter);
          } else if (this.#nextPlace === take) {
            // At the head, waiting for places: let the next one in.
            this.#nextPlace = undefined;
            release?.();
          }
          reject(reason);
        },
      };
      waiters.add(waiter);
      void this.#line.add(
        () =>
          new Promise<void>((settle) => {
            release = settle;
            if (!take()) this.#nextPlace = take;
          }),
        { slot: waiter },
      );
    });
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
