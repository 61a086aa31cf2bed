// Node streams, lines and web streams over the engine's read and write
// primitives, with fs's defaults: start/end inclusive, reading from the file
// position when start is omitted, autoClose closing the file at the end.
import { createInterface, type Interface } from 'node:readline';
import { Readable, Writable } from 'node:stream';
import { ReadableStream } from 'node:stream/web';
import * as args from './args.js';
import { writeAll } from './chunks.js';
import { AioFsyncMode, type Engine, NO_OPTIONS } from './engine.js';

/**
 * Options of {@link AioFile.createReadStream} (those of `FileHandle.createReadStream`).
 * @example
 * file.createReadStream({ start: 10, end: 19, encoding: 'utf8', autoClose: false });
 */
export interface CreateReadStreamOptions {
  /** Decode chunks to strings. @default undefined (Buffers) */
  readonly encoding?: BufferEncoding | null | undefined;
  /** Close the file when the stream ends or is destroyed. @default true */
  readonly autoClose?: boolean | undefined;
  /** Emit 'close' after the stream is destroyed. @default true */
  readonly emitClose?: boolean | undefined;
  /** First byte. @default the file position */
  readonly start?: number | undefined;
  /** Last byte, inclusive. @default Infinity */
  readonly end?: number | undefined;
  /** Bytes per read. @default 65536 */
  readonly highWaterMark?: number | undefined;
  /** Destroys the stream when aborted. */
  readonly signal?: AbortSignal | null | undefined;
}

/**
 * Options of {@link AioFile.createWriteStream} (those of `FileHandle.createWriteStream`).
 * @example
 * file.createWriteStream({ start: 0, flush: true });
 */
export interface CreateWriteStreamOptions {
  /** Encoding of string chunks. @default 'utf8' */
  readonly encoding?: BufferEncoding | null | undefined;
  /** Close the file when the stream finishes or is destroyed. @default true */
  readonly autoClose?: boolean | undefined;
  /** Emit 'close' after the stream is destroyed. @default true */
  readonly emitClose?: boolean | undefined;
  /** Where the first byte goes. @default the file position */
  readonly start?: number | undefined;
  /** Buffered bytes before `write()` returns false. @default 16384 */
  readonly highWaterMark?: number | undefined;
  /** `fsync` the file before it is closed. @default false */
  readonly flush?: boolean | undefined;
  /** Destroys the stream when aborted. */
  readonly signal?: AbortSignal | null | undefined;
}

/**
 * Options of {@link AioFile.readableWebStream}.
 * @example
 * file.readableWebStream({ type: 'bytes' });
 */
export interface ReadableWebStreamOptions {
  /** Only byte streams are made. @default 'bytes' */
  readonly type?: 'bytes' | undefined;
}

function boolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw args.invalidArgType(name, 'of type boolean', value);
  return value;
}

function streamRange(o: { start?: unknown; end?: unknown }): { start: number | undefined; end: number } {
  const start = o.start === undefined ? undefined : args.integer(o.start, 'start', 0);
  const end = o.end === undefined || o.end === Number.POSITIVE_INFINITY ? Infinity : args.integer(o.end, 'end', 0);
  if (start !== undefined && start > end) throw args.outOfRange('start', `<= "end" (here: ${end})`, start);
  return { start, end };
}

/** The readable side of a file, as `fs.ReadStream`. */
export class AioReadStream extends Readable {
  /** Bytes read so far. */
  bytesRead = 0;
  /** The file's path, if it was opened by path. */
  readonly path: string | undefined;
  /** First byte read, if given. */
  readonly start: number | undefined;
  /** Last byte read, inclusive. */
  readonly end: number;
  #pos: number | undefined;
  readonly #engine: Engine;
  readonly #close: () => Promise<void>;
  readonly #autoClose: boolean;

  /** @internal made by {@link AioFile.createReadStream}. */
  constructor(engine: Engine, close: () => Promise<void>, options: unknown) {
    const o = args.object<CreateReadStreamOptions>(options);
    const { start, end } = streamRange(o);
    const highWaterMark =
      o.highWaterMark === undefined ? 65536 : args.integer(o.highWaterMark, 'options.highWaterMark', 1);
    const autoClose = boolean(o.autoClose, 'options.autoClose', true);
    super({
      highWaterMark,
      encoding: args.encoding(o.encoding, 'options.encoding') ?? null,
      emitClose: boolean(o.emitClose, 'options.emitClose', true),
      signal: o.signal ?? undefined,
    } as ConstructorParameters<typeof Readable>[0]);
    this.#engine = engine;
    this.#close = close;
    this.#autoClose = autoClose;
    this.path = engine.path;
    this.start = start;
    this.end = end;
    this.#pos = start;
  }

  /** True until the first read. */
  get pending(): boolean {
    return this.bytesRead === 0 && this.readableLength === 0 && !this.readableEnded;
  }

  /** @internal */
  override _read(size: number): void {
    const left = this.end - (this.#pos ?? this.bytesRead) + 1;
    const n = Math.min(left, Math.max(size, this.readableHighWaterMark));
    if (n <= 0) {
      this.push(null);
      return;
    }
    const buf = Buffer.allocUnsafeSlow(n);
    this.#engine.read(buf, this.#pos ?? null, NO_OPTIONS).then(
      (got) => {
        if (this.destroyed) return;
        if (got === 0) {
          this.push(null);
          return;
        }
        if (this.#pos !== undefined) this.#pos += got;
        this.bytesRead += got;
        this.push(got === n ? buf : buf.subarray(0, got));
      },
      (e: unknown) => this.destroy(e as Error),
    );
  }

  /** @internal */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#autoClose) {
      callback(error);
      return;
    }
    this.#close().then(
      () => callback(error),
      (e: unknown) => callback(error ?? (e as Error)),
    );
  }
}

/** The writable side of a file, as `fs.WriteStream`. */
export class AioWriteStream extends Writable {
  /** Bytes written so far. */
  bytesWritten = 0;
  /** The file's path, if it was opened by path. */
  readonly path: string | undefined;
  /** Where the first byte went, if given. */
  readonly start: number | undefined;
  #pos: number | undefined;
  readonly #engine: Engine;
  readonly #close: () => Promise<void>;
  readonly #autoClose: boolean;
  readonly #flush: boolean;

  /** @internal made by {@link AioFile.createWriteStream}. */
  constructor(engine: Engine, close: () => Promise<void>, options: unknown) {
    const o = args.object<CreateWriteStreamOptions>(options);
    const start = o.start === undefined ? undefined : args.integer(o.start, 'start', 0);
    const autoClose = boolean(o.autoClose, 'options.autoClose', true);
    const flush = boolean(o.flush, 'options.flush', false);
    super({
      highWaterMark: o.highWaterMark === undefined ? 16384 : args.integer(o.highWaterMark, 'options.highWaterMark', 1),
      defaultEncoding: args.encoding(o.encoding, 'options.encoding') ?? 'utf8',
      emitClose: boolean(o.emitClose, 'options.emitClose', true),
      decodeStrings: true,
      signal: o.signal ?? undefined,
    } as ConstructorParameters<typeof Writable>[0]);
    this.#engine = engine;
    this.#close = close;
    this.#autoClose = autoClose;
    this.#flush = flush;
    this.path = engine.path;
    this.start = start;
    this.#pos = start;
  }

  /** True until the first write completes. */
  get pending(): boolean {
    return this.bytesWritten === 0;
  }

  /** @internal */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // Every byte, or an error: a short transfer continues where it stopped.
    writeAll(this.#engine, chunk, this.#pos ?? null, NO_OPTIONS).then(
      (n) => {
        if (this.#pos !== undefined) this.#pos += n;
        this.bytesWritten += n;
        callback();
      },
      (e: unknown) => callback(e as Error),
    );
  }

  /** @internal */
  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this._write(Buffer.concat(chunks.map((c) => c.chunk)), 'utf8', callback);
  }

  /** @internal */
  override _final(callback: (error?: Error | null) => void): void {
    if (!this.#flush) {
      callback();
      return;
    }
    this.#engine.fsync(AioFsyncMode.O_SYNC, NO_OPTIONS).then(
      () => callback(),
      (e: unknown) => callback(e as Error),
    );
  }

  /** @internal */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#autoClose) {
      callback(error);
      return;
    }
    this.#close().then(
      () => callback(error),
      (e: unknown) => callback(error ?? (e as Error)),
    );
  }
}

/** `readline` over a read stream, as `FileHandle.readLines`. */
export function readLines(stream: AioReadStream): Interface {
  return createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
}

/** A byte `ReadableStream` reading from the file position to the end. */
export function readableWebStream(engine: Engine, options: unknown): ReadableStream<Uint8Array> {
  const o = args.object<ReadableWebStreamOptions>(options);
  if (o.type !== undefined && o.type !== 'bytes') throw args.invalidArgValue('options.type', o.type, "must be 'bytes'");
  return new ReadableStream({
    type: 'bytes',
    autoAllocateChunkSize: 16384,
    async pull(controller) {
      const req = controller.byobRequest;
      const view = req?.view;
      if (req === null || req === undefined || view === null || view === undefined) return;
      const n = await engine.read(new Uint8Array(view.buffer, view.byteOffset, view.byteLength), null, NO_OPTIONS);
      if (n === 0) {
        controller.close();
        req.respond(0);
        return;
      }
      req.respond(n);
    },
  }) as ReadableStream<Uint8Array>;
}
