import { constants as osConstants } from 'node:os';
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

/**
 * Queue `signal` (with `value`) to the process on completion.
 * @throws {TypeError | RangeError} for an unknown signal, or one that cannot be caught.
 * @example
 * process.on('SIGUSR2', () => console.log('done'));
 * const cb = AioCb.fromFd(fd, 0, SigevSignal('SIGUSR2'));
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
  // only at completion, by overwriting the request's status. Refuse it here.
  if (signo < 1 || signo > c.SIGRTMAX) {
    throw new RangeError(`SigevSignal: signal ${signo} is out of range 1..${c.SIGRTMAX}`);
  }
  if (signo === osConstants.signals.SIGKILL || signo === osConstants.signals.SIGSTOP) {
    throw new RangeError('SigevSignal: SIGKILL and SIGSTOP cannot notify completion');
  }
  if (!Number.isInteger(value) || value < -2147483648 || value > 2147483647) {
    throw new RangeError('SigevSignal: value must be a 32-bit integer');
  }
  return Object.freeze({ kind: 'signal', signal: signo, value });
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
