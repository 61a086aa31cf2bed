// open(): fs.promises.open's arguments plus the AIO options, in either
// open(path, flags, mode, options) or open(path, { flags, mode, ...options }).
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { O_DIRECT } from '../core/constants.js';
import { AioError } from '../core/errors.js';
import * as args from './args.js';
import { concurrency, DIRECT_FANOUT, duplicates, fanoutOf, nowaitOption } from './descriptors.js';
import { Engine } from './engine.js';
import { type AioFile, fileFromEngine } from './file.js';

/**
 * AIO options of {@link open} and {@link AioFile.fromFd}.
 * @example
 * const file = await open('/data/db.bin', 'r+', 0o644, { concurrency: 128, direct: true });
 */
export interface AioFileOptions {
  /** Most operations in flight on this file; the rest wait in a queue. @default 64 */
  readonly concurrency?: number | undefined;
  /** Open with `O_DIRECT` where the platform has it (buffers must then be aligned; see {@link alignedBuffer}). @default false */
  readonly direct?: boolean | undefined;
  /**
   * Descriptors to spread operations over (the file's own plus `fanout - 1`
   * duplicates). glibc runs one request per descriptor at a time, so with 1
   * operations run in submission order, and with more they run in parallel
   * with no order between them, as with `fs.promises`. Not allowed with
   * append flags, whose writes must stay in order.
   * @default 1, or 16 with `direct` (measured: 4 KiB O_DIRECT reads at depth
   *   64 scale from about 13k ops/s on one descriptor to 68k on 16)
   */
  readonly fanout?: number | undefined;
  /**
   * Serve reads from the page cache first (`preadv2(RWF_NOWAIT)` on the
   * JavaScript thread) when no write, truncate or sync of this file is
   * incomplete; what is not cached goes through AIO. Never used with
   * `O_DIRECT`. false: every read is an AIO request.
   * @default true
   */
  readonly nowait?: boolean | undefined;
}

/**
 * {@link open}'s second argument in its object form: fs's `flags` and `mode`
 * with the AIO options.
 * @example
 * const file = await open('data.bin', { flags: 'r+', concurrency: 16 });
 */
export interface OpenOptions extends AioFileOptions {
  /** As `fs.open`'s flags. @default 'r' */
  readonly flags?: string | number | undefined;
  /** Permissions of a created file. @default 0o666 */
  readonly mode?: string | number | undefined;
}

const flagTable: Record<string, number> = (() => {
  const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND, O_EXCL, O_SYNC } = fs.constants;
  return {
    r: O_RDONLY,
    rs: O_RDONLY | O_SYNC,
    sr: O_RDONLY | O_SYNC,
    'r+': O_RDWR,
    'rs+': O_RDWR | O_SYNC,
    'sr+': O_RDWR | O_SYNC,
    w: O_TRUNC | O_CREAT | O_WRONLY,
    wx: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL,
    xw: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL,
    'w+': O_TRUNC | O_CREAT | O_RDWR,
    'wx+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL,
    'xw+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL,
    a: O_APPEND | O_CREAT | O_WRONLY,
    ax: O_APPEND | O_CREAT | O_WRONLY | O_EXCL,
    xa: O_APPEND | O_CREAT | O_WRONLY | O_EXCL,
    as: O_APPEND | O_CREAT | O_WRONLY | O_SYNC,
    sa: O_APPEND | O_CREAT | O_WRONLY | O_SYNC,
    'a+': O_APPEND | O_CREAT | O_RDWR,
    'ax+': O_APPEND | O_CREAT | O_RDWR | O_EXCL,
    'xa+': O_APPEND | O_CREAT | O_RDWR | O_EXCL,
    'as+': O_APPEND | O_CREAT | O_RDWR | O_SYNC,
    'sa+': O_APPEND | O_CREAT | O_RDWR | O_SYNC,
  };
})();

function toFlags(flags: unknown): number {
  if (flags === undefined || flags === null) return fs.constants.O_RDONLY;
  if (typeof flags === 'number') return args.integer(flags, 'flags', 0, 2 ** 31 - 1);
  if (typeof flags === 'string' && flagTable[flags] !== undefined) return flagTable[flags] as number;
  throw args.invalidArgValue('flags', flags, 'is invalid');
}

function toMode(mode: unknown): number {
  if (mode === undefined || mode === null) return 0o666;
  if (typeof mode === 'string') {
    if (!/^[0-7]+$/.test(mode))
      throw args.invalidArgValue('mode', mode, 'must be a 32-bit unsigned integer or an octal string');
    return Number.parseInt(mode, 8);
  }
  return args.integer(mode, 'mode', 0, 2 ** 32 - 1);
}

function toPath(path: unknown): string {
  if (path instanceof URL) {
    if (path.protocol !== 'file:') throw args.invalidArgType('path', 'a URL of scheme file', path);
    return fileURLToPath(path);
  }
  if (Buffer.isBuffer(path)) return path.toString();
  if (typeof path !== 'string')
    throw args.invalidArgType('path', 'of type string or an instance of Buffer or URL', path);
  if (path.includes('\u0000')) throw args.invalidArgValue('path', path, 'must be a string without null bytes');
  return path;
}

/**
 * Opens `path` for POSIX AIO: `fs.promises.open` with the same arguments,
 * defaults and errors, plus the AIO options (4th argument, or 3rd, or mixed
 * into an object 2nd argument).
 * @param flags as `fs.open` (string or number) @default 'r'
 * @param mode permissions for a created file @default 0o666
 * @throws rejects with an fs error (`ENOENT`, `EACCES`, ...) with `path`;
 *   TypeError/RangeError with Node's codes for bad arguments
 * @example
 * const file = await open('/var/data/log.bin', 'a+', 0o644, { concurrency: 32 });
 * const same = await open('/var/data/log.bin', { flags: 'a+', concurrency: 32 });
 */
export async function open(
  path: string | Buffer | URL,
  flags?: string | number | OpenOptions | null,
  mode?: string | number | AioFileOptions | null,
  options?: AioFileOptions | null,
): Promise<AioFile> {
  let o: Partial<OpenOptions>;
  if (typeof flags === 'object' && flags !== null) {
    o = args.object<OpenOptions>(flags);
    flags = o.flags;
    mode = o.mode;
  } else if (typeof mode === 'object' && mode !== null) {
    o = args.object<AioFileOptions>(mode);
    mode = undefined;
  } else {
    o = args.object<AioFileOptions>(options);
  }
  const p = toPath(path);
  let n = toFlags(flags);
  const m = toMode(mode);
  const limit = concurrency(o.concurrency);
  if (o.direct !== undefined && typeof o.direct !== 'boolean') {
    throw args.invalidArgType('options.direct', 'of type boolean', o.direct);
  }
  const nowait = nowaitOption(o.nowait);
  if (o.direct === true) {
    if (O_DIRECT === undefined) throw new AioError(22, 'open', undefined, p);
    n |= O_DIRECT;
  }
  const append = (n & fs.constants.O_APPEND) !== 0;
  const fanout = fanoutOf(o.fanout, o.direct === true && !append ? DIRECT_FANOUT : 1);
  if (fanout > 1 && append) {
    throw args.outOfRange('options.fanout', '1 for append flags (appended writes must run in order)', fanout);
  }
  const fd = await new Promise<number>((resolve, reject) => {
    fs.open(p, n, m, (err, fd) => (err ? reject(err) : resolve(fd)));
  });
  let fds: number[];
  try {
    fds = duplicates(fd, fanout);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  let engine: Engine;
  try {
    engine = new Engine(fds, p, true, limit, append, { nowait, direct: o.direct === true });
  } catch (e) {
    for (const d of fds) fs.closeSync(d);
    throw e;
  }
  return fileFromEngine(engine);
}
