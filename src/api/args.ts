// Argument checks of the FileHandle surface. They throw what Node's own
// FileHandle throws for the same input (TypeError or RangeError with
// ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE or ERR_INVALID_ARG_VALUE), so a
// caller's error handling ports unchanged. Messages follow Node's wording.
import { AIO_PRIO_DELTA_MAX } from '../core/constants.js';

type Coded<E extends Error> = E & { code: string };

function coded<E extends Error>(error: E, code: string): Coded<E> {
  Object.defineProperty(error, 'code', { value: code, enumerable: true, writable: true, configurable: true });
  return error as Coded<E>;
}

function received(value: unknown): string {
  if (value === undefined || value === null) return ` Received ${value}`;
  if (typeof value === 'function') return ` Received function ${value.name}`;
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name;
    return name ? ` Received an instance of ${name}` : ` Received ${String(value)}`;
  }
  let shown = typeof value === 'bigint' ? `${value}n` : (JSON.stringify(value) ?? String(value));
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
  return ` Received type ${typeof value} (${shown})`;
}

/** TypeError `ERR_INVALID_ARG_TYPE`: `name` has the wrong type. */
export function invalidArgType(name: string, expected: string, value: unknown): TypeError {
  const what = name.includes('.') ? 'property' : 'argument';
  return coded(new TypeError(`The "${name}" ${what} must be ${expected}.${received(value)}`), 'ERR_INVALID_ARG_TYPE');
}

/** RangeError `ERR_OUT_OF_RANGE`: `name` is outside `range`. */
export function outOfRange(name: string, range: string, value: unknown): RangeError {
  const shown = typeof value === 'bigint' ? `${value}n` : String(value);
  return coded(
    new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${shown}`),
    'ERR_OUT_OF_RANGE',
  );
}

/** TypeError `ERR_INVALID_ARG_VALUE`: `name` has the right type and an unusable value. */
export function invalidArgValue(name: string, value: unknown, reason: string): TypeError {
  let shown: string;
  try {
    shown = typeof value === 'object' && value !== null ? `an instance of ${value.constructor?.name}` : String(value);
  } catch {
    shown = typeof value;
  }
  return coded(new TypeError(`The argument '${name}' ${reason}. Received ${shown}`), 'ERR_INVALID_ARG_VALUE');
}

/** An integer from `min` to `max`, as Node's `validateInteger`. */
export function integer(
  value: unknown,
  name: string,
  min = Number.MIN_SAFE_INTEGER,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
  if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value);
  return value;
}

/** A plain options object or undefined/null (as `{}`), else ERR_INVALID_ARG_TYPE. */
export function object<T extends object>(value: unknown, name = 'options'): Partial<T> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidArgType(name, 'of type object', value);
  return value as Partial<T>;
}

/** A real `AbortSignal` or undefined, else ERR_INVALID_ARG_TYPE. */
export function abortSignal(value: unknown, name = 'options.signal'): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw invalidArgType(name, 'an instance of AbortSignal', value);
  return value;
}

// The native constant reads 0 where the addon's build did not see
// <limits.h>'s AIO_PRIO_DELTA_MAX; glibc's value is 20 (and glibc refuses
// anything above it with EINVAL at submission).
const REQPRIO_MAX = AIO_PRIO_DELTA_MAX > 0 ? AIO_PRIO_DELTA_MAX : process.platform === 'linux' ? 20 : 0;

/**
 * `aio_reqprio`: how much less urgent than its neighbours a request is on
 * its descriptor (0 = most urgent), from 0 to `AIO_PRIO_DELTA_MAX`.
 */
export function reqprio(value: unknown, name = 'options.reqprio'): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  const max = REQPRIO_MAX;
  if (!Number.isInteger(value) || value < 0 || value > max) throw outOfRange(name, `>= 0 && <= ${max}`, value);
  return value;
}

/** A buffer, typed array or DataView, else ERR_INVALID_ARG_TYPE. */
export function view(value: unknown, name = 'buffer'): ArrayBufferView {
  if (!ArrayBuffer.isView(value)) throw invalidArgType(name, 'an instance of Buffer, TypedArray, or DataView', value);
  return value;
}

/** An array of ArrayBufferView, as Node's `validateBufferArray`. */
export function viewArray(value: unknown, name = 'buffers'): ArrayBufferView[] {
  if (!Array.isArray(value) || !value.every((b) => ArrayBuffer.isView(b))) {
    throw invalidArgType(name, 'an ArrayBufferView[]', value);
  }
  return value as ArrayBufferView[];
}

/**
 * Node 20's FileHandle reads and writes at the current file position for
 * any position that is not a non-negative safe integer; posix-aio also takes
 * a non-negative bigint (offsets past 2^53).
 */
export function position(value: unknown): number | bigint | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : null;
  if (typeof value === 'bigint') {
    if (value < 0n) return null;
    if (value > (1n << 63n) - 1n) throw outOfRange('position', '>= 0 && <= 2 ** 63 - 1', value);
    return value;
  }
  return null;
}

/** A Buffer encoding name, else ERR_INVALID_ARG_VALUE. */
export function encoding(value: unknown, name = 'encoding'): BufferEncoding | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !Buffer.isEncoding(value)) throw invalidArgValue(name, value, 'is invalid encoding');
  return value as BufferEncoding;
}
