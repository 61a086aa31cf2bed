// Descriptors of a file: the concurrency and fanout options, the duplicates
// that spread requests over glibc's per-descriptor queues, and fromFd's
// engine. Shared by open() and AioFile.fromFd.
import * as fs from 'node:fs';
import { dupFd } from '../core/fd.js';
import * as args from './args.js';
import { Engine } from './engine.js';

/**
 * Options of {@link AioFile.fromFd}.
 * @example
 * const file = AioFile.fromFd(fd, { autoClose: true, concurrency: 16 });
 */
export interface FromFdOptions {
  /** Close the descriptor when the file is closed. @default false */
  readonly autoClose?: boolean | undefined;
  /** @default 64 */
  readonly concurrency?: number | undefined;
  /** See {@link AioFileOptions.fanout}. @default 1 */
  readonly fanout?: number | undefined;
  /** See {@link AioFileOptions.nowait} (off anyway when the descriptor has `O_DIRECT`). @default true */
  readonly nowait?: boolean | undefined;
}

const DEFAULT_CONCURRENCY = 64;
export const DIRECT_FANOUT = 16;

export function concurrency(c: unknown): number {
  return c === undefined ? DEFAULT_CONCURRENCY : args.integer(c, 'options.concurrency', 1, 2 ** 20);
}

export function fanoutOf(f: unknown, fallback: number): number {
  return f === undefined ? fallback : args.integer(f, 'options.fanout', 1, 1024);
}

export function nowaitOption(v: unknown): boolean {
  if (v === undefined) return true;
  if (typeof v !== 'boolean') throw args.invalidArgType('options.nowait', 'of type boolean', v);
  return v;
}

export function duplicates(fd: number, fanout: number): number[] {
  const fds = [fd];
  try {
    while (fds.length < fanout) fds.push(dupFd(fd));
  } catch (e) {
    for (const d of fds.slice(1)) fs.closeSync(d);
    throw e;
  }
  return fds;
}

/** @internal {@link AioFile.fromFd}'s validation, kept here with open's. */
export function engineFromFd(fd: unknown, options: unknown): Engine {
  const f = args.integer(fd, 'fd', 0, 2 ** 31 - 1);
  const o = args.object<FromFdOptions>(options);
  const limit = concurrency(o.concurrency);
  if (o.autoClose !== undefined && typeof o.autoClose !== 'boolean') {
    throw args.invalidArgType('options.autoClose', 'of type boolean', o.autoClose);
  }
  const nowait = nowaitOption(o.nowait);
  const fds = duplicates(f, fanoutOf(o.fanout, 1));
  return new Engine(fds, undefined, o.autoClose === true, limit, fcntlAppend(f), { nowait });
}

// Whether fd was opened with O_APPEND, from /proc where there is one.
function fcntlAppend(fd: number): boolean {
  try {
    const info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    const m = /flags:\s*([0-7]+)/.exec(info);
    return m !== null && (Number.parseInt(m[1] as string, 8) & fs.constants.O_APPEND) !== 0;
  } catch {
    return false;
  }
}
