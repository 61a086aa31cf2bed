// Sequential streaming over AioFile.read/write with a fixed number of
// operations in flight.

import { setMaxListeners } from 'node:events';
import { AbortError, AioError } from '../core/errors.js';
import {
  describe,
  validateAbortSignal,
  validateInt,
  validateOffset,
  validateOptions,
  validateView,
} from '../core/validate.js';
import type { AioFile } from './file.js';

/**
 * Options of {@link AioFile.readChunks}.
 * @example
 * for await (const chunk of file.readChunks({ chunkSize: 1 << 20, depth: 8, start: 4096 })) use(chunk);
 */
export interface ReadChunksOptions {
  /** Bytes per read; the last chunk may be shorter. @default 65536 */
  readonly chunkSize?: number;
  /** Reads kept in flight ahead of the consumer. @default 4 */
  readonly depth?: number;
  /** First byte. @default 0 */
  readonly start?: number;
  /** End of the range (exclusive). @default end of file */
  readonly end?: number;
  /** Stops the iteration; reads in flight are cancelled. */
  readonly signal?: AbortSignal;
}

/**
 * Options of {@link AioFile.writeChunks}.
 * @example
 * const n = await file.writeChunks(source, { position: 0, depth: 8 });
 */
export interface WriteChunksOptions {
  /** Where the first chunk goes. @default 0 */
  readonly position?: number;
  /** Writes in flight. @default 4 */
  readonly depth?: number;
  /** Stops the writes not yet started; the call rejects with an AbortError. */
  readonly signal?: AbortSignal;
}

const EIO = 5;

export async function* readChunks(file: AioFile, options?: ReadChunksOptions): AsyncGenerator<Buffer, void, undefined> {
  const o = validateOptions<ReadChunksOptions>(options);
  const chunkSize = validateInt(o.chunkSize ?? 65536, 'options.chunkSize', 1, 2 ** 31 - 1);
  const depth = validateInt(o.depth ?? 4, 'options.depth', 1, 1024);
  const start = validateOffset(o.start ?? 0, 'options.start') as number;
  if (typeof start !== 'number') throw new TypeError('options.start must be a number');
  const end = o.end === undefined ? undefined : (validateOffset(o.end, 'options.end') as number);
  if (end !== undefined && typeof end !== 'number') throw new TypeError('options.end must be a number');
  const signal = validateAbortSignal(o.signal);
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });

  // Our own controller cancels the reads in flight when the consumer stops.
  const stop = new AbortController();
  // Every read in flight listens to it; depth may exceed Node's default of 10.
  setMaxListeners(0, stop.signal);
  const forward = () => stop.abort(signal?.reason);
  signal?.addEventListener('abort', forward, { once: true });
  const inflight: { read: Promise<number>; buf: Buffer }[] = [];
  let next = start;
  const fill = () => {
    while (inflight.length < depth && (end === undefined || next < end)) {
      const len = end === undefined ? chunkSize : Math.min(chunkSize, end - next);
      const buf = Buffer.allocUnsafe(len);
      const read = file.read(buf, next, { signal: stop.signal });
      // Rejections are taken in order below, or settled in finally.
      read.catch(() => {});
      inflight.push({ read, buf });
      next += len;
    }
  };
  try {
    fill();
    for (;;) {
      const head = inflight.shift();
      if (head === undefined) return;
      const n = await head.read;
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

export async function writeChunks(
  file: AioFile,
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options?: WriteChunksOptions,
): Promise<number> {
  if (
    typeof source !== 'object' ||
    source === null ||
    (typeof (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] !== 'function' &&
      typeof (source as Iterable<Uint8Array>)[Symbol.iterator] !== 'function')
  ) {
    throw new TypeError(`source must be an AsyncIterable or Iterable of Uint8Array, got ${describe(source)}`);
  }
  const o = validateOptions<WriteChunksOptions>(options);
  let position = validateOffset(o.position ?? 0, 'options.position');
  if (typeof position !== 'number') throw new TypeError('options.position must be a number');
  const depth = validateInt(o.depth ?? 4, 'options.depth', 1, 1024);
  const signal = validateAbortSignal(o.signal);
  const opts = signal === undefined ? undefined : { signal };

  const inflight = new Set<Promise<void>>();
  let total = 0;
  let failure: { error: unknown } | undefined;
  const writeAll = async (chunk: Uint8Array, at: number) => {
    let done = 0;
    while (done < chunk.byteLength) {
      const n = await file.write(done === 0 ? chunk : chunk.subarray(done), at + done, opts);
      // pwrite() returning 0 for a non-empty buffer would loop forever.
      if (n === 0) throw new AioError(EIO, 'aio_write', undefined, file.path);
      done += n;
    }
    total += done;
  };
  try {
    for await (const chunk of source as AsyncIterable<Uint8Array>) {
      if (failure !== undefined) break;
      if (signal?.aborted) {
        failure = { error: new AbortError(undefined, { cause: signal.reason }) };
        break;
      }
      validateView(chunk, 'chunk');
      if (chunk.byteLength === 0) continue;
      const at = position;
      position += chunk.byteLength;
      const p: Promise<void> = writeAll(chunk, at).then(
        () => {
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
