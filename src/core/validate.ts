// Argument checks shared by every public entry point. Each throws a TypeError
// (wrong type) or RangeError (right type, wrong value) whose message names
// the argument, before anything reaches native code.

const INT32_MAX = 2147483647;
const INT64_MAX = (1n << 63n) - 1n;

export function validateFd(fd: unknown, name = 'fd'): number {
  if (typeof fd !== 'number') throw new TypeError(`${name} must be an integer, got ${describe(fd)}`);
  if (!Number.isInteger(fd) || fd < 0 || fd > INT32_MAX) {
    throw new RangeError(`${name} must be an integer from 0 to ${INT32_MAX}, got ${fd}`);
  }
  return fd;
}

export function validateOffset(offset: unknown, name = 'offset'): number | bigint {
  if (typeof offset === 'bigint') {
    if (offset < 0n || offset > INT64_MAX) throw new RangeError(`${name} must be from 0 to 2^63-1, got ${offset}`);
    return offset;
  }
  if (typeof offset !== 'number') throw new TypeError(`${name} must be a number or bigint, got ${describe(offset)}`);
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new RangeError(`${name} must be a non-negative safe integer, got ${offset}`);
  }
  return offset;
}

export function validateInt(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be an integer, got ${describe(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

export function validatePrio(prio: unknown): number {
  return validateInt(prio, 'prio', 0, INT32_MAX);
}

export function isDetached(buffer: ArrayBufferLike): boolean {
  if (buffer.byteLength !== 0 || !(buffer instanceof ArrayBuffer)) return false;
  try {
    new Uint8Array(buffer);
    return false;
  } catch {
    return true;
  }
}

export function validateView(buf: unknown, name = 'buffer'): ArrayBufferView {
  if (!ArrayBuffer.isView(buf)) throw new TypeError(`${name} must be an ArrayBufferView, got ${describe(buf)}`);
  if (isDetached(buf.buffer)) throw new TypeError(`${name} is detached`);
  return buf;
}

export function validateAbortSignal(signal: unknown, name = 'options.signal'): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  // A real AbortSignal only: a look-alike's listener methods run inside the
  // completion path, where a throw could not be reported to its operation.
  if (!(signal instanceof AbortSignal)) {
    throw new TypeError(`${name} must be an AbortSignal, got ${describe(signal)}`);
  }
  return signal;
}

export function validateOptions<T extends object>(options: unknown, name = 'options'): Partial<T> {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') throw new TypeError(`${name} must be an object, got ${describe(options)}`);
  return options as Partial<T>;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return `an instance of ${(v as object).constructor?.name ?? 'Object'}`;
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}...` : v)}`;
  return `${typeof v} ${String(v)}`;
}
