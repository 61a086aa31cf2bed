import { constants as osConstants } from 'node:os';
import { isMainThread } from 'node:worker_threads';
import { constants as c } from './binding.js';

/**
 * How completion is announced (see the README): {@link SigevThread} (default),
 * {@link SigevNone} or {@link SigevSignal}.
 * @example
 * const cb = AioCb.fromMutSlice(fd, 0, buf, 0, SigevNone);
 */
export type SigevNotify =
  | {
      /** `SIGEV_NONE`: see {@link SigevNone}. */
      readonly kind: 'none';
    }
  | {
      /** `SIGEV_THREAD`: see {@link SigevThread}. */
      readonly kind: 'thread';
    }
  | {
      /** `SIGEV_SIGNAL`: see {@link SigevSignal}. */
      readonly kind: 'signal';
      /** Signal number queued on completion. */
      readonly signal: number;
      /** `sigev_value.sival_int` carried with the signal. */
      readonly value: number;
    };

/**
 * No notification: completion is observed by polling (`error()`,
 * `aioReturn()`, {@link aioSuspend}, {@link completions}).
 * @example
 * const cb = AioCb.fromMutSlice(fd, 0, buf, 0, SigevNone);
 * const read = cb.read();
 * await aioSuspend([cb]);
 */
export const SigevNone: SigevNotify = Object.freeze({ kind: 'none' });
/**
 * Default: completion is delivered into JavaScript and the promise settles on its own.
 * @example
 * const n = await AioCb.fromMutSlice(fd, 0, buf, 0, SigevThread).read();
 */
export const SigevThread: SigevNotify = Object.freeze({ kind: 'thread' });

// Signals that can never announce a completion: SIGKILL and SIGSTOP cannot
// be caught, the fault signals cannot be handled safely from JavaScript, and
// Node reserves SIGUSR1 for its inspector.
const reserved = new Set(
  ['SIGKILL', 'SIGSTOP', 'SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGSYS', 'SIGUSR1'].map(
    (n) => (osConstants.signals as Record<string, number>)[n],
  ),
);
const names = new Map<number, string>();
for (const [name, n] of Object.entries(osConstants.signals as Record<string, number>)) {
  if (!names.has(n)) names.set(n, name);
}

// The standard signals are the ones with names; between them and SIGRTMIN
// lie libc's own real-time signals (32 and 33 on glibc).
const lastStandard = Math.max(...names.keys());

function isRealtime(signo: number): boolean {
  return signo >= c.SIGRTMIN && signo <= c.SIGRTMAX;
}

/**
 * Queue `signal` (with `value`) to the process on completion.
 *
 * Real-time signals (`SIGRTMIN`..`SIGRTMAX`, by number: 34..64 on glibc)
 * work everywhere; if nothing handles one, the library installs a no-op
 * handler so a completion never kills the process. A standard signal works
 * only on the main thread and only when it has a `process.on()` listener
 * as the operation is submitted; from then on the library keeps the signal
 * handled, so a late completion (after the caller removed its listeners) is
 * harmless.
 * @throws {TypeError} for an unknown name or a non-integer
 * @throws {RangeError} for a signal that cannot notify: out of range, glibc's
 *   own 32 and 33, `SIGKILL`, `SIGSTOP`, `SIGSEGV`, `SIGBUS`, `SIGFPE`,
 *   `SIGILL`, `SIGTRAP`, `SIGABRT`, `SIGSYS`, `SIGUSR1` (Node's inspector), or
 *   any standard signal inside a Worker
 * @example
 * process.on('SIGUSR2', () => console.log('done'));
 * const cb = AioCb.fromFd(fd, 0, SigevSignal('SIGUSR2'));
 * const rt = AioCb.fromFd(fd, 0, SigevSignal(40)); // a real-time signal
 */
export function SigevSignal(signal: string | number, value = 0): SigevNotify {
  let signo: number;
  if (typeof signal === 'string') {
    const n = (osConstants.signals as Record<string, number>)[signal];
    if (n === undefined) throw new TypeError(`SigevSignal: unknown signal name ${JSON.stringify(signal)}`);
    signo = n;
  } else if (Number.isInteger(signal)) {
    signo = signal;
  } else {
    throw new TypeError(`SigevSignal: signal must be a name or an integer, got ${typeof signal}`);
  }
  // glibc does not check the sigevent at submission: a bad number surfaces
  // only at completion, by overwriting the request's status (or by killing
  // the process). Refuse it here.
  if (!isRealtime(signo)) {
    if (signo < 1 || signo > lastStandard) {
      throw new RangeError(
        `SigevSignal: signal ${signo} cannot notify completion: use a standard signal or ${c.SIGRTMIN}..${c.SIGRTMAX}`,
      );
    }
    if (reserved.has(signo)) {
      throw new RangeError(`SigevSignal: signal ${names.get(signo) ?? signo} cannot notify completion`);
    }
    if (!isMainThread) {
      throw new RangeError(
        `SigevSignal: a Worker cannot listen for ${names.get(signo) ?? signo}; use a real-time signal (${c.SIGRTMIN}..${c.SIGRTMAX})`,
      );
    }
  }
  if (!Number.isInteger(value) || value < -2147483648 || value > 2147483647) {
    throw new RangeError('SigevSignal: value must be a 32-bit integer');
  }
  return Object.freeze({ kind: 'signal', signal: signo, value });
}

/**
 * At submission: throws a RangeError unless the signal can announce the
 * completion now: a standard signal needs a `process.on()` listener. Once
 * one has been used, the engine keeps the signal handled for the life of
 * the environment, whatever happens to the listeners (native/engine.h).
 */
export function checkSignal(s: SigevNotify): void {
  if (s.kind !== 'signal' || isRealtime(s.signal)) return;
  const name = names.get(s.signal) as NodeJS.Signals;
  if (process.listenerCount(name) === 0) {
    throw new RangeError(
      `SigevSignal: ${name} has no process.on('${name}') listener: its completion would kill the process`,
    );
  }
}

/** Native notify kind codes (see native/request.h). */
export function sigevCode(s: SigevNotify): number {
  return s.kind === 'none' ? 0 : s.kind === 'thread' ? 1 : 2;
}

export function validateSigev(s: unknown, name = 'sigevNotify'): SigevNotify {
  if (typeof s === 'object' && s !== null) {
    const k = (s as { kind?: unknown }).kind;
    if (k === 'none') return SigevNone;
    if (k === 'thread') return SigevThread;
    if (k === 'signal') {
      const { signal, value } = s as { signal: unknown; value: unknown };
      return SigevSignal(signal as number, (value ?? 0) as number);
    }
  }
  throw new TypeError(`${name} must be SigevNone, SigevThread or SigevSignal(...)`);
}
