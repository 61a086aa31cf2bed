// Sequential streaming over the engine's read and write primitives with a
// fixed number of operations in flight. A chunk ends short only at the end:
// a short transfer (a pipe with less data ready, Linux's 0x7ffff000-byte cap
// on one transfer) is continued where it stopped, and only a 0-byte read ends
// the iteration.
import { AbortError, AioError } from '../core/errors.js';
import * as args from './args.js';
import { abortError, type Engine, type OpOptions } from './engine.js';

/**
 * Options of {@link AioFile.readChunks}.
 * @example
 * for await (const chunk of file.readChunks({ chunkSize: 1 << 20, depth: 8, start: 4096 })) use(chunk);
 */
export interface ReadChunksOptions {
  /** Bytes per chunk; only the last chunk may be shorter. @default 65536 */
  readonly chunkSize?: number | undefined;
  /** Reads kept in flight ahead of the consumer (1 for pipes and other unseekable files). @default 4 */
  readonly depth?: number | undefined;
  /** First byte. @default 0 */
  readonly start?: number | undefined;
  /** Last byte, inclusive, as `createReadStream`'s `end`. @default end of file */
  readonly end?: number | undefined;
  /** Stops the iteration; reads in flight are cancelled. */
  readonly signal?: AbortSignal | undefined;
  /** `aio_reqprio` of every read (higher = less urgent), 0 to `AIO_PRIO_DELTA_MAX`. @default 0 */
  readonly reqprio?: number | undefined;
}

/**
 * Options of {@link AioFile.writeChunks}.
 * @example
 * const n = await file.writeChunks(source, { position: 0, depth: 8 });
 */
export interface WriteChunksOptions {
  /** Where the first chunk goes. @default 0 */
  readonly position?: number | undefined;
  /** Writes in flight. @default 4 */
  readonly depth?: number | undefined;
  /** Stops the writes not yet started; the call rejects with an AbortError. */
  readonly signal?: AbortSignal | undefined;
  /** `aio_reqprio` of every write (higher = less urgent). @default 0 */
  readonly reqprio?: number | undefined;
}

const EIO = 5;

/**
 * Writes all of `view` from `position` (or the file position when null),
 * one transfer after another until every byte is written or one fails.
 */
export async function writeAll(
  engine: Engine,
  view: ArrayBufferView,
  position: number | bigint | null,
  o: OpOptions,
): Promise<number> {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  let done = 0;
  while (done < bytes.byteLength) {
    if (o.signal?.aborted) throw abortError(o.signal);
    const at = position === null ? null : typeof position === 'bigint' ? position + BigInt(done) : position + done;
    const n = await engine.write(done === 0 ? bytes : bytes.subarray(done), at, o);
    // pwrite() returning 0 for a non-empty buffer would loop forever.
    if (n === 0) throw new AioError(EIO, 'aio_write', undefined, engine.path);
    done += n;
  }
  return done;
}

/** Reads into all of `view` from `position` until full or a 0-byte read; returns the bytes read. */
export async function readFull(
  engine: Engine,
  view: Uint8Array,
  position: number,
  o: OpOptions,
  first?: Promise<number>,
): Promise<number> {
  let done = 0;
  for (;;) {
    const n = await (done === 0 && first !== undefined
      ? first
      : engine.read(done === 0 ? view : view.subarray(done), position + done, o));
    done += n;
    if (n === 0 || done >= view.byteLength) return done;
  }
}

export function readChunks(engine: Engine, options: unknown): AsyncGenerator<Buffer, void, undefined> {
  const o = args.object<ReadChunksOptions>(options);
  const chunkSize = o.chunkSize === undefined ? 65536 : args.integer(o.chunkSize, 'options.chunkSize', 1, 2 ** 31 - 1);
  const depth = o.depth === undefined ? 4 : args.integer(o.depth, 'options.depth', 1, 1024);
  const start = o.start === undefined ? 0 : args.integer(o.start, 'options.start', 0);
  const end = o.end === undefined ? Number.POSITIVE_INFINITY : args.integer(o.end, 'options.end', 0);
  if (start > end) throw args.outOfRange('options.start', `<= "end" (here: ${end})`, start);
  const signal = args.abortSignal(o.signal);
  const reqprio = args.reqprio(o.reqprio);
  return iterate(engine, chunkSize, depth, start, end, signal, reqprio);
}

async function* iterate(
  engine: Engine,
  chunkSize: number,
  depth: number,
  start: number,
  end: number,
  signal: AbortSignal | undefined,
  reqprio: number,
): AsyncGenerator<Buffer, void, undefined> {
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
  // Reads ahead at fixed offsets are only right where offsets mean something:
  // on a pipe glibc falls back to read(), so one read at a time there.
  const st = await engine.stat(false);
  if (!st.isFile() && !st.isBlockDevice()) depth = 1;
  // Our own controller cancels the reads in flight when the consumer stops.
  const stop = new AbortController();
  const forward = () => stop.abort(signal?.reason);
  signal?.addEventListener('abort', forward, { once: true });
  const o: OpOptions = { signal: stop.signal, reqprio };
  const inflight: { at: number; buf: Buffer; read: Promise<number> }[] = [];
  let next = start;
  const fill = () => {
    while (inflight.length < depth && next <= end) {
      const len = Math.min(chunkSize, end - next + 1);
      const buf = Buffer.allocUnsafe(len);
      const read = engine.read(buf, next, o);
      // Rejections are taken in order below, or settled in finally.
      read.catch(() => {});
      inflight.push({ at: next, buf, read });
      next += len;
    }
  };
  try {
    fill();
    for (;;) {
      const head = inflight.shift();
      if (head === undefined) return;
      const n = await readFull(engine, head.buf, head.at, o, head.read);
      if (n < head.buf.length) {
        if (n > 0) yield head.buf.subarray(0, n);
        return;
      }
      fill();
      yield head.buf;
    }
  } finally {
    signal?.removeEventListener('abort', forward);
    if (inflight.length > 0) {
      stop.abort();
      await Promise.allSettled(inflight.map((x) => x.read));
    }
  }
}

export async function writeChunks(engine: Engine, source: unknown, options: unknown): Promise<number> {
  if (
    typeof source !== 'object' ||
    source === null ||
    (typeof (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] !== 'function' &&
      typeof (source as Iterable<Uint8Array>)[Symbol.iterator] !== 'function')
  ) {
    throw args.invalidArgType('source', 'an AsyncIterable or Iterable of Uint8Array', source);
  }
  const opts = args.object<WriteChunksOptions>(options);
  let position = opts.position === undefined ? 0 : args.integer(opts.position, 'options.position', 0);
  const depth = opts.depth === undefined ? 4 : args.integer(opts.depth, 'options.depth', 1, 1024);
  const signal = args.abortSignal(opts.signal);
  const o: OpOptions = { signal, reqprio: args.reqprio(opts.reqprio) };

  const inflight = new Set<Promise<void>>();
  let total = 0;
  let failure: { error: unknown } | undefined;
  try {
    for await (const chunk of source as AsyncIterable<Uint8Array>) {
      if (failure !== undefined) break;
      if (signal?.aborted) {
        failure = { error: abortError(signal) };
        break;
      }
      args.view(chunk, 'chunk');
      if (chunk.byteLength === 0) continue;
      const at = position;
      position += chunk.byteLength;
      const p: Promise<void> = writeAll(engine, chunk, at, o).then(
        (n) => {
          total += n;
          inflight.delete(p);
        },
        (error: unknown) => {
          inflight.delete(p);
          failure ??= { error };
        },
      );
      inflight.add(p);
      if (inflight.size >= depth) await Promise.race(inflight);
    }
  } catch (error) {
    // The source threw or gave a bad chunk: still settle what is in flight
    // first, so the caller never closes the descriptor under queued writes.
    failure ??= { error };
  }
  await Promise.all(inflight);
  if (failure !== undefined) throw failure.error;
  return total;
}
