// AioFile: the FileHandle surface. Every member takes the arguments Node 20's
// FileHandle takes, with the same defaults, results and validation errors,
// and adds `signal` and `reqprio` to its options; the work happens in the
// engine (one read primitive, one write primitive, lio_listio lists).
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import type { Interface } from 'node:readline';
import type { ReadableStream } from 'node:stream/web';
import { AioFsyncMode } from '../core/constants.js';
import type { AioError } from '../core/errors.js';
import { type Advice, adviseFd } from './advise.js';
import * as args from './args.js';
import { type ReadChunksOptions, readChunks, type WriteChunksOptions, writeAll, writeChunks } from './chunks.js';
import { engineFromFd, type FromFdOptions } from './descriptors.js';
import { abortError, type Engine, LIST_MAX, type ListEntry, type OpOptions } from './engine.js';
import { type NowaitStats, noteAio, stats, tryReadInline } from './nowait.js';
import {
  AioReadStream,
  AioWriteStream,
  type CreateReadStreamOptions,
  type CreateWriteStreamOptions,
  type ReadableWebStreamOptions,
  readableWebStream,
  readLines,
} from './streams.js';

/**
 * What every AIO operation's options add to fs's: cancellation and the
 * request priority.
 * @example
 * await file.read(buf, { position: 0, signal: AbortSignal.timeout(500), reqprio: 1 });
 */
export interface OperationOptions {
  /** Cancels the operation; see the README's cancellation phases. */
  readonly signal?: AbortSignal | undefined;
  /**
   * `aio_reqprio`: how much LESS urgent this request is than the others on
   * the same descriptor (0 = most urgent), 0 to `AIO_PRIO_DELTA_MAX` (20 on
   * glibc). Not p-queue's priority, where higher runs first.
   * @default 0
   */
  readonly reqprio?: number | undefined;
}

/**
 * What read options add: the per-call switch of the page-cache fast path.
 * @example
 * await file.read(buf, { position: 0, nowait: false }); // always an AIO request
 */
export interface ReadPathOptions {
  /**
   * Try the page cache first (see {@link AioFileOptions.nowait}); false
   * sends this call straight to AIO. It cannot turn on a path the file has off.
   * @default true
   */
  readonly nowait?: boolean | undefined;
}

/**
 * Options of {@link AioFile.read} (as `FileHandle.read`'s) plus {@link OperationOptions}.
 * @example
 * const { bytesRead } = await file.read(buf, { offset: 0, length: 512, position: 4096 });
 */
export interface ReadOptions<T extends ArrayBufferView = Buffer> extends OperationOptions, ReadPathOptions {
  /** Destination (only in the one-argument form). @default Buffer.alloc(16384) */
  readonly buffer?: T | undefined;
  /** Where in `buffer` the bytes go. @default 0 */
  readonly offset?: number | null | undefined;
  /** Bytes to read. @default buffer.byteLength - offset */
  readonly length?: number | null | undefined;
  /** File offset; null or omitted reads at the file position, which advances. @default null */
  readonly position?: number | bigint | null | undefined;
}

/**
 * Options of {@link AioFile.write} with a buffer (as `FileHandle.write`'s) plus {@link OperationOptions}.
 * @example
 * await file.write(buf, { offset: 0, length: 512, position: 4096 });
 */
export interface WriteOptions extends OperationOptions {
  /** Where in `buffer` the bytes start. @default 0 */
  readonly offset?: number | null | undefined;
  /** Bytes to write. @default buffer.byteLength - offset */
  readonly length?: number | null | undefined;
  /** File offset; null or omitted writes at the file position, which advances. @default null */
  readonly position?: number | bigint | null | undefined;
}

/**
 * Options of {@link AioFile.write} with a string.
 * @example
 * await file.write('héllo', { position: 0, encoding: 'utf8' });
 */
export interface WriteStringOptions extends OperationOptions {
  /** File offset; null or omitted writes at the file position. @default null */
  readonly position?: number | bigint | null | undefined;
  /** @default 'utf8' */
  readonly encoding?: BufferEncoding | null | undefined;
}

/** Result of {@link AioFile.read}: what one transfer read, and the buffer. */
export interface FileReadResult<T extends ArrayBufferView> {
  /** Bytes the one transfer read (0 at end of file). */
  bytesRead: number;
  /** The buffer given (or allocated), holding the bytes at `offset`. */
  buffer: T;
}

/** Result of {@link AioFile.write}: what one transfer wrote, and what was given. */
export interface FileWriteResult<T> {
  /** Bytes the one transfer wrote. */
  bytesWritten: number;
  /** The buffer or string given. */
  buffer: T;
}

/** Result of {@link AioFile.readv}. */
export interface ReadVResult<T extends readonly ArrayBufferView[]> {
  /** Bytes read, up to and including the first short buffer. */
  bytesRead: number;
  /** The buffers given. */
  buffers: T;
}

/** Result of {@link AioFile.writev}. */
export interface WriteVResult<T extends readonly ArrayBufferView[]> {
  /** Bytes written, up to and including the first short buffer. */
  bytesWritten: number;
  /** The buffers given. */
  buffers: T;
}

/**
 * Options of {@link AioFile.readv} and {@link AioFile.writev}.
 * @example
 * await file.readv([a, b], 0, { signal });
 */
export type VectorOptions = OperationOptions;

/**
 * Options of {@link AioFile.readFile}.
 * @example
 * const text = await file.readFile({ encoding: 'utf8', signal });
 */
export interface ReadFileOptions extends OperationOptions, ReadPathOptions {
  /** Decode to a string. @default null (a Buffer) */
  readonly encoding?: BufferEncoding | null | undefined;
  /** Accepted and ignored, as FileHandle does. */
  readonly flag?: string | number | undefined;
}

/**
 * Options of {@link AioFile.writeFile} and {@link AioFile.appendFile}.
 * @example
 * await file.writeFile('text', { encoding: 'utf8', signal });
 */
export interface WriteFileOptions extends OperationOptions {
  /** Encoding of string data. @default 'utf8' */
  readonly encoding?: BufferEncoding | null | undefined;
  /** Accepted and ignored, as FileHandle does. */
  readonly mode?: string | number | undefined;
  /** Accepted and ignored, as FileHandle does. */
  readonly flag?: string | number | undefined;
}

/**
 * Options of {@link AioFile.stat}.
 * @example
 * const { size } = await file.stat({ bigint: true }); // size: bigint
 */
export interface StatOptions {
  /** Numbers as bigint. @default false */
  readonly bigint?: boolean | undefined;
}

/**
 * Options of {@link AioFile.sync} and {@link AioFile.datasync}.
 * @example
 * await file.sync({ signal: AbortSignal.timeout(5000) });
 */
export interface SyncOptions {
  /** Cancels the flush while it is still queued. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Options of {@link AioFile.batch}; `nowait: false` submits every read entry.
 * @example
 * file.batch(ops, { signal, reqprio: 2 });
 */
export interface BatchOptions extends OperationOptions, ReadPathOptions {}

/**
 * What {@link AioFile.stats} reports: the page-cache fast path's counters.
 * @example
 * const { inlineHits, misses, aioSubmissions, disabled } = file.stats();
 */
export type AioFileStats = NowaitStats;

/**
 * One entry of {@link AioFile.batch}.
 * @example
 * const ops: BatchOp[] = [{ op: 'read', buffer: Buffer.alloc(512), position: 0 }, { op: 'nop' }];
 */
export type BatchOp =
  | {
      /** Read `buffer.byteLength` bytes at `position` into `buffer` (`LIO_READ`). */
      readonly op: 'read';
      /** Destination of the read. */
      readonly buffer: ArrayBufferView;
      /** File offset of the first byte. */
      readonly position: number | bigint;
    }
  | {
      /** One transfer of `buffer` at `position` (`LIO_WRITE`); resolves to the bytes written. */
      readonly op: 'write';
      /** Bytes to write. */
      readonly buffer: ArrayBufferView;
      /** File offset of the first byte. */
      readonly position: number | bigint;
    }
  | {
      /** No operation (`LIO_NOP`): its promise resolves to 0. */
      readonly op: 'nop';
    };

/** Data {@link AioFile.writeFile} takes. */
export type WriteFileData =
  | string
  | ArrayBufferView
  | Iterable<string | ArrayBufferView>
  | AsyncIterable<string | ArrayBufferView>;

const EBADF = 9;
const EINVAL = 22;
const READ_DEFAULT = 16384;
const UNKNOWN_SIZE_CHUNK = 65536;

function opOptions(o: Partial<OperationOptions & ReadPathOptions>): OpOptions {
  const nowait = o.nowait;
  if (nowait !== undefined && typeof nowait !== 'boolean') {
    throw args.invalidArgType('options.nowait', 'of type boolean', nowait);
  }
  return { signal: args.abortSignal(o.signal), reqprio: args.reqprio(o.reqprio), nowait };
}

function bytesOf(view: ArrayBufferView, offset: number, length: number): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset + offset, length);
}

// Closes what a collected, still open file owned, as Node does for a
// FileHandle, and says so.
const collected = new FinalizationRegistry<Engine>((engine) => {
  if (engine.closing) return;
  for (const fd of engine.closeSync()) {
    process.emitWarning(`Closing file descriptor ${fd} on garbage collection`, {
      type: 'Warning',
      code: 'ERR_AIO_CLOSED_ON_GC',
      detail: 'An AioFile was garbage collected before close() was called: close every file you open.',
    });
  }
});

// Set by AioFile's static block: open() builds files around an engine.
export let fileFromEngine: (engine: Engine) => AioFile;

/**
 * A file opened for POSIX AIO, usable wherever an `fs.promises.FileHandle`
 * is: same members, overloads, defaults, results and errors (see the
 * README's table for the remaining differences). Reads and writes are POSIX
 * AIO requests; `readv`/`writev` are one `lio_listio` each.
 *
 * `read` and `write` return what ONE transfer did, exactly as FileHandle:
 * fewer bytes than asked is not an error. `readFile`, `writeFile`,
 * `appendFile`, the streams, `readChunks` and `writeChunks` loop until done.
 *
 * Emits `'close'` when `close()` is called.
 *
 * @example
 * await using file = await open('data.bin', 'r+');
 * await file.write(Buffer.from('hello'), 0, 5, 0);
 * const { bytesRead, buffer } = await file.read(Buffer.alloc(5), 0, 5, 0);
 */
export class AioFile extends EventEmitter implements AsyncDisposable {
  readonly #engine: Engine;
  #fd: number;

  private constructor(engine: Engine) {
    super();
    this.#engine = engine;
    this.#fd = engine.fd;
    collected.register(this, engine, engine);
  }

  static {
    fileFromEngine = (engine) => new AioFile(engine);
  }

  /**
   * Wraps a descriptor the caller owns. The file position starts at 0.
   * @throws {TypeError | RangeError} for a bad descriptor or options
   * @example
   * const file = AioFile.fromFd(fs.openSync('data.bin', 'r'), { autoClose: true });
   */
  static fromFd(fd: number, options?: FromFdOptions): AioFile {
    return new AioFile(engineFromFd(fd, options));
  }

  /** The file descriptor; -1 once `close()` was called. */
  get fd(): number {
    return this.#fd;
  }

  /** The path given to {@link open}, if any. */
  get path(): string | undefined {
    return this.#engine.path;
  }

  /** Mutating operations (writes, truncate, syncs) submitted and not yet completed. */
  get pendingMutations(): number {
    return this.#engine.pendingMutations;
  }

  /**
   * What the page-cache fast path did on this file so far: reads served
   * inline (`inlineHits`), served in part with the rest through AIO
   * (`inlinePartial`), tried and not cached (`misses`), not tried because of
   * a limit or an incomplete write/truncate/sync (`skipped`), AIO
   * submissions, and why the path is off (`disabled`: `'O_DIRECT'`,
   * `'nowait: false'`, an errno name), or undefined while it is on.
   * A snapshot; still readable after `close()`.
   * @example
   * await file.read(buf, 0, 4096, 0);
   * console.log(file.stats().inlineHits); // 1 when the block was cached
   */
  stats(): AioFileStats {
    return stats(this.#engine.nowait);
  }

  /**
   * `posix_fadvise(fd, offset, length, advice)`: tells the kernel how the
   * range will be read. `length` 0 means to the end of the file.
   * `'dontneed'` drops the range's clean pages from the page cache,
   * `'willneed'` starts reading it in.
   * @param advice one of `'normal'`, `'sequential'`, `'random'`, `'willneed'`, `'dontneed'`, `'noreuse'`
   * @throws rejects with TypeError/RangeError for a bad range or advice name,
   *   {@link AioError} `EBADF` after close, `ESPIPE` for a pipe (syscall `posix_fadvise`)
   * @example
   * await file.advise(0, 0, 'sequential');
   */
  async advise(offset: number | bigint, length: number | bigint, advice: Advice): Promise<void> {
    const closed = this.#closed('posix_fadvise');
    if (closed) throw closed;
    try {
      adviseFd(this.#engine.fd, offset, length, advice);
    } catch (e) {
      throw this.#engine.decorate(e);
    }
  }

  #closed(syscall: Parameters<Engine['error']>[1]): AioError | undefined {
    return this.#fd === -1 || this.#engine.closing ? this.#engine.error(EBADF, syscall) : undefined;
  }

  /**
   * Reads at most `length` bytes with ONE transfer, as `FileHandle.read`:
   * `bytesRead` may be less than asked (0 at end of file).
   * @param offset where in `buffer` the bytes go @default 0
   * @param length @default buffer.byteLength - offset
   * @param position file offset; null reads at the file position, which advances @default null
   * @throws rejects with ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE / ERR_INVALID_ARG_VALUE
   *   as FileHandle, {@link AioError} (EBADF after close) or {@link AbortError}
   * @example
   * const { bytesRead, buffer } = await file.read(Buffer.alloc(4096), 0, 4096, 0);
   * const next = await file.read({ length: 100 }); // at the file position
   */
  read<T extends ArrayBufferView = Buffer>(
    buffer: T,
    offset?: number | null,
    length?: number | null,
    position?: number | bigint | null,
  ): Promise<FileReadResult<T>>;
  read<T extends ArrayBufferView = Buffer>(buffer: T, options?: ReadOptions): Promise<FileReadResult<T>>;
  read<T extends ArrayBufferView = Buffer>(options?: ReadOptions<T>): Promise<FileReadResult<T>>;
  async read(
    bufferOrOptions?: unknown,
    offsetOrOptions?: unknown,
    length?: unknown,
    position?: unknown,
  ): Promise<FileReadResult<ArrayBufferView>> {
    const closed = this.#closed('read');
    if (closed) throw closed;
    let buffer: ArrayBufferView;
    let offset: unknown = offsetOrOptions;
    let opts: Partial<ReadOptions> = {};
    if (!ArrayBuffer.isView(bufferOrOptions)) {
      opts = args.object<ReadOptions>(bufferOrOptions);
      buffer = args.view(opts.buffer ?? Buffer.alloc(READ_DEFAULT));
      offset = opts.offset ?? 0;
      length = opts.length ?? buffer.byteLength - (offset as number);
      position = opts.position ?? null;
    } else {
      buffer = bufferOrOptions;
      if (offset !== null && typeof offset === 'object') {
        opts = offset as ReadOptions;
        offset = opts.offset ?? 0;
        length = opts.length ?? buffer.byteLength - (offset as number);
        position = opts.position ?? null;
      }
    }
    const off = offset === undefined || offset === null ? 0 : args.integer(offset, 'offset', 0);
    const len = length === undefined || length === null ? buffer.byteLength - off : args.integer(length, 'length');
    const o = opOptions(opts);
    if (len === 0) return { bytesRead: 0, buffer };
    if (buffer.byteLength === 0) throw args.invalidArgValue('buffer', buffer, 'is empty and cannot be written');
    if (len < 0) throw args.outOfRange('length', '>= 0', len);
    if (off + len > buffer.byteLength) throw args.outOfRange('length', `<= ${buffer.byteLength - off}`, len);
    const bytesRead = await this.#engine.read(bytesOf(buffer, off, len), args.position(position), o);
    return { bytesRead, buffer };
  }

  /**
   * Writes at most `length` bytes (or a string) with ONE transfer, as
   * `FileHandle.write`: `bytesWritten` may be less than asked (a full disk,
   * a file size limit, Linux's 0x7ffff000-byte cap); {@link writeFile}
   * loops until everything is written.
   * @param offset where in `buffer` the bytes start @default 0
   * @param length @default buffer.byteLength - offset
   * @param position file offset; null writes at the file position, which advances @default null
   * @throws rejects with the validation errors FileHandle throws,
   *   {@link AioError} (`EBADF` for a read-only descriptor or after close,
   *   `ENOSPC`, `EFBIG`) or {@link AbortError}
   * @example
   * const { bytesWritten } = await file.write(Buffer.from('hello'), 0, 5, 0);
   * await file.write('text at the file position');
   */
  write<T extends ArrayBufferView>(
    buffer: T,
    offset?: number | null,
    length?: number | null,
    position?: number | bigint | null,
  ): Promise<FileWriteResult<T>>;
  write<T extends ArrayBufferView>(buffer: T, options?: WriteOptions): Promise<FileWriteResult<T>>;
  write(
    data: string,
    position?: number | bigint | null,
    encoding?: BufferEncoding | null,
  ): Promise<FileWriteResult<string>>;
  write(data: string, options?: WriteStringOptions): Promise<FileWriteResult<string>>;
  async write(
    buffer: unknown,
    offsetOrOptions?: unknown,
    length?: unknown,
    position?: unknown,
  ): Promise<FileWriteResult<unknown>> {
    const closed = this.#closed('write');
    if (closed) throw closed;
    if (ArrayBuffer.isView(buffer)) {
      let offset = offsetOrOptions;
      let opts: Partial<WriteOptions> = {};
      if (typeof offset === 'object') {
        opts = args.object<WriteOptions>(offset);
        offset = opts.offset ?? 0;
        length = opts.length;
        position = opts.position ?? null;
      }
      const o = opOptions(opts);
      if (buffer.byteLength === 0) return { bytesWritten: 0, buffer };
      const off = offset === undefined || offset === null ? 0 : args.integer(offset, 'offset', 0);
      const len = typeof length === 'number' ? length : buffer.byteLength - off;
      if (off > buffer.byteLength) throw args.outOfRange('offset', `<= ${buffer.byteLength}`, off);
      if (len > buffer.byteLength - off) throw args.outOfRange('length', `<= ${buffer.byteLength - off}`, len);
      args.integer(len, 'length', 0, 2 ** 31 - 1);
      const bytesWritten = await this.#engine.write(bytesOf(buffer, off, len), args.position(position), o);
      return { bytesWritten, buffer };
    }
    if (typeof buffer !== 'string') {
      throw args.invalidArgType('buffer', 'of type string or an instance of Buffer, TypedArray, or DataView', buffer);
    }
    let opts: Partial<WriteStringOptions> = {};
    let at: unknown = offsetOrOptions;
    let enc: unknown = length;
    if (at !== null && typeof at === 'object') {
      opts = at as WriteStringOptions;
      at = opts.position;
      enc = opts.encoding;
    }
    const o = opOptions(opts);
    const encoding = typeof enc === 'string' && Buffer.isEncoding(enc) ? enc : 'utf8';
    const bytes = Buffer.from(buffer, encoding);
    const bytesWritten = bytes.byteLength === 0 ? 0 : await this.#engine.write(bytes, args.position(at), o);
    return { bytesWritten, buffer };
  }

  /**
   * Reads into `buffers` in order with one `lio_listio`, as
   * `FileHandle.readv`: `bytesRead` counts up to the first short buffer.
   * @param position file offset; null reads at the file position, which advances @default null
   * @throws rejects as {@link read}; ERR_INVALID_ARG_TYPE when `buffers` is not an ArrayBufferView[]
   * @example
   * const { bytesRead } = await file.readv([Buffer.alloc(4), Buffer.alloc(8)], 0);
   */
  async readv<T extends readonly ArrayBufferView[]>(
    buffers: T,
    position?: number | bigint | null,
    options?: VectorOptions,
  ): Promise<ReadVResult<T>> {
    const closed = this.#closed('readv');
    if (closed) throw closed;
    const views = args.viewArray(buffers);
    const o = opOptions(args.object<VectorOptions>(options));
    if (views.length === 0) throw this.#engine.error(EINVAL, 'read');
    const bytesRead = await this.#vector('read', views, args.position(position), o);
    return { bytesRead, buffers };
  }

  /**
   * Writes `buffers` in order with one `lio_listio`, as `FileHandle.writev`:
   * `bytesWritten` counts up to the first short buffer.
   * @param position file offset; null writes at the file position, which advances @default null
   * @throws rejects as {@link write}
   * @example
   * await file.writev([Buffer.from('ab'), Buffer.from('cd')], 0);
   */
  async writev<T extends readonly ArrayBufferView[]>(
    buffers: T,
    position?: number | bigint | null,
    options?: VectorOptions,
  ): Promise<WriteVResult<T>> {
    const closed = this.#closed('writev');
    if (closed) throw closed;
    const views = args.viewArray(buffers);
    const o = opOptions(args.object<VectorOptions>(options));
    if (views.length === 0) return { bytesWritten: 0, buffers };
    const bytesWritten = await this.#vector('write', views, args.position(position), o);
    return { bytesWritten, buffers };
  }

  async #vector(
    op: 'read' | 'write',
    views: readonly ArrayBufferView[],
    position: number | bigint | null,
    o: OpOptions,
  ): Promise<number> {
    const e = this.#engine;
    const run = async (at: number | bigint) => {
      const entries: ListEntry[] = [];
      let next = at;
      for (const buffer of views) {
        entries.push({ op, buffer, position: next });
        next = typeof next === 'bigint' ? next + BigInt(buffer.byteLength) : next + buffer.byteLength;
      }
      const settled = await Promise.allSettled(e.list(entries, o));
      let total = 0;
      for (let i = 0; i < settled.length; i++) {
        const r = settled[i] as PromiseSettledResult<number>;
        if (r.status === 'rejected') throw r.reason;
        total += r.value;
        if (r.value < (views[i] as ArrayBufferView).byteLength) break;
      }
      return total;
    };
    if (position !== null) return run(position);
    return e.atCursor(run, op === 'read' || !e.append);
  }

  /**
   * Reads from the file position to the end of the file, one transfer after
   * another until a read returns 0, as `FileHandle.readFile`.
   * @param options an encoding name, or {@link ReadFileOptions}
   * @throws rejects with ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE for bad
   *   options, {@link AioError} or {@link AbortError}
   * @example
   * const text = await file.readFile('utf8');
   */
  readFile(options?: ({ encoding?: null | undefined } & ReadFileOptions) | null): Promise<Buffer<ArrayBuffer>>;
  readFile(options: ({ encoding: BufferEncoding } & ReadFileOptions) | BufferEncoding): Promise<string>;
  readFile(options?: ReadFileOptions | BufferEncoding | null): Promise<string | Buffer<ArrayBuffer>>;
  async readFile(options?: unknown): Promise<string | Buffer<ArrayBuffer>> {
    const closed = this.#closed('read');
    if (closed) throw closed;
    const opts: Partial<ReadFileOptions> =
      typeof options === 'string' ? { encoding: options as BufferEncoding } : fileOptions<ReadFileOptions>(options);
    const encoding = args.encoding(opts.encoding);
    const o = opOptions(opts);
    if (o.signal?.aborted) throw abortError(o.signal);
    const st = await this.#engine.stat(false);
    if (o.signal?.aborted) throw abortError(o.signal);
    const size = st.isFile() ? (st as fs.Stats).size : 0;
    const chunks: Buffer<ArrayBuffer>[] = [];
    let total = 0;
    for (;;) {
      if (o.signal?.aborted) throw abortError(o.signal);
      const want = size > total ? size - total : UNKNOWN_SIZE_CHUNK;
      const buf = Buffer.allocUnsafe(Math.min(want, 2 ** 31 - 1));
      const n = await this.#engine.read(buf, null, o);
      if (n === 0) break;
      chunks.push(n === buf.length ? buf : buf.subarray(0, n));
      total += n;
      if (size > 0 && total === size) break;
    }
    const data = chunks.length === 1 ? (chunks[0] as Buffer<ArrayBuffer>) : Buffer.concat(chunks, total);
    return encoding === undefined ? data : data.toString(encoding);
  }

  /**
   * Writes all of `data` at the file position, one transfer after another
   * until every byte is written or one fails, as `FileHandle.writeFile` (which
   * neither truncates nor seeks: open with 'w' to replace a file).
   * @param options an encoding name, or {@link WriteFileOptions}
   * @throws rejects with ERR_INVALID_ARG_TYPE for data of another type,
   *   {@link AioError} (`ENOSPC`, `EFBIG`) or {@link AbortError}
   * @example
   * await file.writeFile('hello', 'utf8');
   */
  async writeFile(data: WriteFileData, options?: WriteFileOptions | BufferEncoding | null): Promise<void> {
    const closed = this.#closed('write');
    if (closed) throw closed;
    const opts = typeof options === 'string' ? { encoding: options } : fileOptions<WriteFileOptions>(options);
    const encoding = args.encoding(opts.encoding) ?? 'utf8';
    const o = opOptions(opts);
    if (o.signal?.aborted) throw abortError(o.signal);
    if (typeof data === 'string' || ArrayBuffer.isView(data)) {
      const view = typeof data === 'string' ? Buffer.from(data, encoding) : data;
      await writeAll(this.#engine, view, null, o);
      return;
    }
    if (
      typeof data !== 'object' ||
      data === null ||
      (typeof (data as Iterable<unknown>)[Symbol.iterator] !== 'function' &&
        typeof (data as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function')
    ) {
      throw args.invalidArgType('data', 'of type string or an instance of Buffer, TypedArray, or DataView', data);
    }
    for await (const chunk of data as AsyncIterable<unknown>) {
      if (o.signal?.aborted) throw abortError(o.signal);
      const view = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : args.view(chunk, 'data');
      await writeAll(this.#engine, view, null, o);
    }
  }

  /**
   * As {@link writeFile} (for a FileHandle, appending means writing at the
   * file position; open with 'a' to append at the end).
   * @throws as {@link writeFile}
   * @example
   * await log.appendFile('line\n');
   */
  appendFile(data: WriteFileData, options?: WriteFileOptions | BufferEncoding | null): Promise<void> {
    return this.writeFile(data, options);
  }

  /**
   * `ftruncate`, after every write submitted before it has completed; the
   * file position does not move.
   * @param len new size (negative means 0) @default 0
   * @throws rejects with ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE, or an fs error
   * @example
   * await file.truncate(4096);
   */
  async truncate(len = 0): Promise<void> {
    const closed = this.#closed('ftruncate');
    if (closed) throw closed;
    const n = Math.max(0, args.integer(len, 'len'));
    await this.#engine.meta<void>('ftruncate', (fd, cb) => fs.ftruncate(fd, n, (err) => cb(err, undefined)), true);
  }

  /**
   * `fstat` of the descriptor, after the writes submitted before it.
   * @throws rejects with {@link AioError} `EBADF` after `close()`
   * @example
   * const { size } = await file.stat();
   * const big = await file.stat({ bigint: true }); // big.size is a bigint
   */
  stat(options: StatOptions & { bigint: true }): Promise<fs.BigIntStats>;
  stat(options?: (StatOptions & { bigint?: false | undefined }) | null): Promise<fs.Stats>;
  stat(options?: StatOptions | null): Promise<fs.Stats | fs.BigIntStats>;
  async stat(options?: StatOptions | null): Promise<fs.Stats | fs.BigIntStats> {
    const closed = this.#closed('fstat');
    if (closed) throw closed;
    return this.#engine.stat(options?.bigint === true);
  }

  /**
   * `fchmod`, after the writes submitted before it.
   * @param mode a number or an octal string
   * @throws rejects with ERR_INVALID_ARG_VALUE / ERR_OUT_OF_RANGE or an fs error
   * @example
   * await file.chmod(0o600);
   */
  async chmod(mode: string | number): Promise<void> {
    const closed = this.#closed('fchmod');
    if (closed) throw closed;
    let m: number;
    if (typeof mode === 'string') {
      if (!/^[0-7]+$/.test(mode)) {
        throw args.invalidArgValue('mode', mode, 'must be a 32-bit unsigned integer or an octal string');
      }
      m = Number.parseInt(mode, 8);
    } else {
      m = args.integer(mode, 'mode', 0, 2 ** 32 - 1);
    }
    await this.#engine.meta<void>('fchmod', (fd, cb) => fs.fchmod(fd, m, (err) => cb(err, undefined)));
  }

  /**
   * `fchown`, after the writes submitted before it; -1 keeps an id.
   * @throws rejects with ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE or an fs error (`EPERM`)
   * @example
   * await file.chown(1000, -1);
   */
  async chown(uid: number, gid: number): Promise<void> {
    const closed = this.#closed('fchown');
    if (closed) throw closed;
    const u = args.integer(uid, 'uid', -1, 2 ** 32 - 1);
    const g = args.integer(gid, 'gid', -1, 2 ** 32 - 1);
    await this.#engine.meta<void>('fchown', (fd, cb) => fs.fchown(fd, u, g, (err) => cb(err, undefined)));
  }

  /**
   * `futimes`, after the writes submitted before it.
   * @param atime a Date, seconds since the epoch, or a numeric string
   * @throws rejects with ERR_INVALID_ARG_TYPE or an fs error
   * @example
   * await file.utimes(new Date(), new Date());
   */
  async utimes(atime: string | number | Date, mtime: string | number | Date): Promise<void> {
    const closed = this.#closed('futime');
    if (closed) throw closed;
    const a = time(atime, 'atime');
    const m = time(mtime, 'mtime');
    await this.#engine.meta<void>('futime', (fd, cb) => fs.futimes(fd, a, m, (err) => cb(err, undefined)));
  }

  /**
   * Flushes data and metadata (`aio_fsync(O_SYNC)`) of the writes completed before it.
   * @throws rejects with {@link AioError} or {@link AbortError}
   * @example
   * await file.write(record, 0, record.length, offset);
   * await file.sync();
   */
  async sync(options?: SyncOptions): Promise<void> {
    const closed = this.#closed('fsync');
    if (closed) throw closed;
    await this.#engine.fsync(AioFsyncMode.O_SYNC, opOptions(args.object<SyncOptions>(options)));
  }

  /**
   * Flushes data (`aio_fsync(O_DSYNC)`) of the writes completed before it.
   * @throws rejects with {@link AioError} or {@link AbortError}
   * @example
   * await file.datasync();
   */
  async datasync(options?: SyncOptions): Promise<void> {
    const closed = this.#closed('fdatasync');
    if (closed) throw closed;
    await this.#engine.fsync(AioFsyncMode.O_DSYNC, opOptions(args.object<SyncOptions>(options)));
  }

  /**
   * Submits `ops` with one `lio_listio(LIO_NOWAIT)` and returns one promise
   * per op, in order. A failed entry rejects only its own promise; a write
   * entry is one transfer (its result may be short). Lists longer than the
   * concurrency limit or the platform's list limit are split.
   * @throws {TypeError} when `ops` is not an array (a bad entry rejects its own promise)
   * @example
   * const [w, r] = await Promise.all(file.batch([
   *   { op: 'write', buffer: Buffer.from('abc'), position: 0 },
   *   { op: 'read', buffer: Buffer.alloc(3), position: 100 },
   * ]));
   */
  batch(ops: readonly BatchOp[], options?: BatchOptions): Promise<number>[] {
    if (!Array.isArray(ops)) throw args.invalidArgType('ops', 'an instance of Array', ops);
    let o: OpOptions | undefined;
    let failAll: unknown;
    try {
      o = opOptions(args.object<BatchOptions>(options));
    } catch (e) {
      failAll = e;
    }
    const results: Promise<number>[] = new Array(ops.length);
    const pending: { index: number; entry: ListEntry; inline: number }[] = [];
    const state = this.#engine.nowait;
    // Read entries may be served from the page cache until the first write
    // entry: a later read must see that write, as one descriptor's list runs
    // in order. tryReadInline() itself refuses behind incomplete mutations.
    let inline = o?.nowait !== false;
    for (let i = 0; i < ops.length; i++) {
      try {
        if (failAll !== undefined) throw failAll;
        const signal = o?.signal;
        if (signal?.aborted) throw abortError(signal);
        const closed = this.#closed('lio_listio');
        if (closed) throw closed;
        const entry = batchEntry(ops[i]);
        if (entry === undefined) {
          results[i] = Promise.resolve(0);
          continue;
        }
        if (entry.op === 'write') inline = false;
        const len = entry.buffer.byteLength;
        const r =
          inline && len > 0 ? tryReadInline(state, this.#engine.fd, entry.buffer, 0, len, entry.position) : undefined;
        if (r === undefined) {
          pending.push({ index: i, entry, inline: 0 });
        } else if (r.done) {
          results[i] = Promise.resolve(r.bytesRead);
        } else {
          // The uncached rest goes into the list; the entry reports the sum.
          const got = r.bytesRead;
          const b = entry.buffer;
          const position = typeof entry.position === 'bigint' ? entry.position + BigInt(got) : entry.position + got;
          const rest = new Uint8Array(b.buffer, b.byteOffset + got, len - got);
          pending.push({ index: i, entry: { op: 'read', buffer: rest, position }, inline: got });
        }
      } catch (e) {
        results[i] = Promise.reject(e);
      }
    }
    if (o !== undefined && pending.length > 0) noteAio(state, pending.length);
    if (o !== undefined) {
      const step = Math.min(this.#engine.admission.limit, LIST_MAX);
      for (let at = 0; at < pending.length; at += step) {
        const part = pending.slice(at, at + step);
        const promises = this.#engine.list(
          part.map((p) => p.entry),
          o,
        );
        part.forEach((p, j) => {
          const got = p.inline;
          const promise = promises[j] as Promise<number>;
          results[p.index] = got === 0 ? promise : promise.then((n) => got + n);
        });
      }
    }
    return results;
  }

  /**
   * Reads the byte range in order, keeping `depth` reads in flight ahead of
   * the consumer. Every chunk is full except the last: a short transfer is
   * continued, and only a 0-byte read (or `end`) ends the iteration.
   * Breaking out of the loop cancels the reads in flight.
   * @throws TypeError or RangeError (Node's codes) for bad options, at once;
   *   the iteration rejects with {@link AioError} or {@link AbortError}
   * @example
   * for await (const chunk of file.readChunks({ chunkSize: 1 << 20 })) hash.update(chunk);
   */
  readChunks(options?: ReadChunksOptions): AsyncGenerator<Buffer, void, undefined> {
    return readChunks(this.#engine, options);
  }

  /**
   * Writes every chunk of `source` back to back from `position`, up to
   * `depth` writes in flight, each chunk until all its bytes are written.
   * @returns total bytes written
   * @throws rejects with the first failed write's {@link AioError}, with
   *   {@link AbortError} when `signal` fires, or with the source's own error,
   *   after the writes in flight have settled; ERR_INVALID_ARG_TYPE for a
   *   source that is not iterable
   * @example
   * const total = await dst.writeChunks(src.readChunks(), { position: 0 });
   */
  async writeChunks(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options?: WriteChunksOptions,
  ): Promise<number> {
    const closed = this.#closed('write');
    if (closed) throw closed;
    return writeChunks(this.#engine, source, options);
  }

  /**
   * A readable stream of the file, as `FileHandle.createReadStream`: `start`
   * and `end` are inclusive, without `start` it reads from the file position,
   * and it closes the file at the end unless `autoClose` is false.
   * @throws ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE for bad options
   * @example
   * file.createReadStream({ start: 0, end: 99 }).pipe(process.stdout);
   */
  createReadStream(options?: CreateReadStreamOptions): AioReadStream {
    return new AioReadStream(this.#engine, () => this.close(), options);
  }

  /**
   * A writable stream into the file, as `FileHandle.createWriteStream`; each
   * chunk is written completely (short transfers continue) or the stream errors.
   * @throws ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE for bad options
   * @example
   * await pipeline(source, file.createWriteStream({ start: 0 }));
   */
  createWriteStream(options?: CreateWriteStreamOptions): AioWriteStream {
    return new AioWriteStream(this.#engine, () => this.close(), options);
  }

  /**
   * Lines of the file, as `FileHandle.readLines` (a `readline.Interface`
   * over {@link createReadStream}, which closes the file at the end unless
   * `autoClose` is false).
   * @throws as {@link createReadStream}
   * @example
   * for await (const line of file.readLines()) console.log(line);
   */
  readLines(options?: CreateReadStreamOptions): Interface {
    return readLines(this.createReadStream(options));
  }

  /**
   * A byte `ReadableStream` from the file position to the end, as
   * `FileHandle.readableWebStream`.
   * @throws {AioError} EBADF after close
   * @example
   * for await (const chunk of file.readableWebStream()) use(chunk);
   */
  readableWebStream(options?: ReadableWebStreamOptions): ReadableStream<Uint8Array> {
    const closed = this.#closed('read');
    if (closed) throw closed;
    return readableWebStream(this.#engine, options);
  }

  /**
   * Rejects the operations still waiting for admission (`ECANCELED`), waits
   * for those in flight, then closes the descriptor (when this file owns it).
   * `fd` becomes -1 and `'close'` is emitted at once. Idempotent; later
   * operations reject with `EBADF`.
   * @throws rejects with the fs error of `close(2)`, if it fails
   * @example
   * await file.close();
   */
  close(): Promise<void> {
    if (this.#fd === -1) return this.#engine.close();
    this.#fd = -1;
    collected.unregister(this.#engine);
    const closing = this.#engine.close();
    this.emit('close');
    return closing;
  }

  /** Closes the file, as {@link AioFile.close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function fileOptions<T extends object>(options: unknown): Partial<T> {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') throw args.invalidArgType('options', 'one of type string or object', options);
  return options as Partial<T>;
}

function time(value: unknown, name: string): number | string | Date {
  if (typeof value === 'number' || value instanceof Date) return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return value;
  throw args.invalidArgType(name, 'an instance of Date or an Time in seconds', value);
}

function batchEntry(op: BatchOp | undefined): ListEntry | undefined {
  if (typeof op !== 'object' || op === null) throw args.invalidArgType('ops[i]', 'of type object', op);
  if (op.op === 'nop') return undefined;
  if (op.op !== 'read' && op.op !== 'write') {
    throw args.invalidArgValue('op', (op as { op: unknown }).op, "must be 'read', 'write' or 'nop'");
  }
  const buffer = args.view(op.buffer, 'buffer');
  if (typeof op.position !== 'number' && typeof op.position !== 'bigint') {
    throw args.invalidArgType('position', 'of type number or bigint', op.position);
  }
  const position = args.position(op.position);
  if (position === null) throw args.outOfRange('position', '>= 0 && <= 2 ** 63 - 1', op.position);
  return { op: op.op, buffer, position };
}
