// readChunks, writeChunks, streams interop, completions() and alignedBuffer.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  AbortError,
  AioCb,
  AioError,
  AioFile,
  alignedBuffer,
  completions,
  open,
  SigevNone,
  SigevThread,
} from '../src/index.js';
import { blockingFifo, glibcCaughtUp, readAt, tempDir, tempFile, track, writeAt } from './helpers.js';

const MiB = 1 << 20;

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const chunk of it) out.push(chunk);
  return out;
}

describe('readChunks', () => {
  it('yields the whole file in order, 64 KiB at a time by default', async () => {
    const data = randomBytes(MiB);
    const { path: p } = tempFile(data);
    const file = await open(p);
    const chunks = await collect(file.readChunks());
    expect(chunks.length).toBe(16);
    for (const c of chunks) {
      expect(Buffer.isBuffer(c)).toBe(true);
      expect(c.length).toBe(65536);
    }
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    await file.close();
  });

  it('a file that is not a multiple of chunkSize ends with a shorter chunk', async () => {
    const data = randomBytes(MiB + 123);
    const { path: p } = tempFile(data);
    const file = await open(p);
    const chunks = await collect(file.readChunks({ chunkSize: 100_000, depth: 3 }));
    expect(chunks.map((c) => c.length)).toEqual([...Array(10).fill(100_000), MiB + 123 - 1_000_000]);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    await file.close();
  });

  it('honours chunkSize, start and end (inclusive, as createReadStream), the last chunk shorter', async () => {
    const data = randomBytes(MiB);
    const { path: p } = tempFile(data);
    const file = await open(p);
    const start = 1234;
    const end = start + 5 * 100_000 + 50_000 - 1;
    const chunks = await collect(file.readChunks({ chunkSize: 100_000, start, end, depth: 2 }));
    expect(chunks.map((c) => c.length)).toEqual([100_000, 100_000, 100_000, 100_000, 100_000, 50_000]);
    let at = start;
    for (const c of chunks) {
      expect(c.equals(data.subarray(at, at + c.length))).toBe(true);
      at += c.length;
    }
    expect(at).toBe(end + 1);
    // start === end is one byte, as in createReadStream.
    await expect(collect(file.readChunks({ start: 10, end: 10 }))).resolves.toEqual([data.subarray(10, 11)]);
    expect(() => file.readChunks({ start: 11, end: 10 })).toThrow(RangeError);
    await file.close();
  });

  it('stops at end of file when end is beyond it, and yields nothing from past it', async () => {
    const data = randomBytes(300_000);
    const { path: p } = tempFile(data);
    const file = await open(p);
    const chunks = await collect(file.readChunks({ chunkSize: 65536, start: 70_000, end: 10 * MiB }));
    expect(chunks.map((c) => c.length)).toEqual([65536, 65536, 65536, 300_000 - 70_000 - 3 * 65536]);
    expect(Buffer.concat(chunks).equals(data.subarray(70_000))).toBe(true);
    await expect(collect(file.readChunks({ start: 400_000 }))).resolves.toEqual([]);
    await file.close();
  });

  it('breaking out early settles the reads in flight; close() then resolves', async () => {
    const data = randomBytes(MiB);
    const { path: p } = tempFile(data);
    const file = await open(p);
    const got: Buffer[] = [];
    for await (const chunk of file.readChunks({ chunkSize: 4096, depth: 8 })) {
      got.push(chunk);
      if (got.length === 3) break;
    }
    expect(Buffer.concat(got).equals(data.subarray(0, 3 * 4096))).toBe(true);
    await expect(file.close()).resolves.toBeUndefined();
  });

  it('return() cancels the queued reads and waits for the running one before it resolves', async () => {
    // chunkSize 1 on a FIFO: each read takes one byte. Read 0 gets 'A'; read
    // 1 then runs (blocked) and cannot be cancelled; reads 2.. wait in libc.
    const fifo = blockingFifo();
    const file = AioFile.fromFd(fifo.fd);
    fs.writeSync(fifo.fd, 'A');
    const it = file.readChunks({ chunkSize: 1, depth: 4 });
    const first = await it.next();
    expect(first.done).toBe(false);
    expect((first.value as Buffer).toString()).toBe('A');
    await glibcCaughtUp();

    const returned = it.return!();
    const state = track(returned);
    await sleep(30);
    const settledEarly = state.settled;
    fs.writeSync(fifo.fd, 'B');
    await expect(returned).resolves.toEqual({ done: true, value: undefined });
    expect(settledEarly).toBe(false);
    await expect(it.next()).resolves.toEqual({ done: true, value: undefined });

    // The cancelled reads never ran: the next byte goes to a new read.
    const next = Buffer.alloc(1);
    const read = readAt(file, next, 0);
    fs.writeSync(fifo.fd, 'C');
    await expect(read).resolves.toBe(1);
    expect(next.toString()).toBe('C');
    await expect(file.close()).resolves.toBeUndefined();
  });

  it('Readable.from(readChunks()) through stream.pipeline makes an identical copy', async () => {
    const data = randomBytes(MiB + 4321);
    const { path: p } = tempFile(data);
    const dest = path.join(tempDir(), 'copy');
    const file = await open(p);
    await pipeline(Readable.from(file.readChunks({ chunkSize: 50_000 })), fs.createWriteStream(dest));
    expect(fs.readFileSync(dest).equals(data)).toBe(true);
    await file.close();
  });

  it('a signal aborted during iteration rejects with an AbortError', async () => {
    const data = randomBytes(MiB);
    const { path: p } = tempFile(data);
    const file = await open(p);
    const ac = new AbortController();
    const reason = new Error('enough');
    const got: Buffer[] = [];
    const err = await (async () => {
      for await (const chunk of file.readChunks({ signal: ac.signal, chunkSize: 65536 })) {
        got.push(chunk);
        if (got.length === 2) ac.abort(reason);
      }
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AbortError);
    expect(err).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    expect((err as Error).cause).toBe(reason);
    // Reads already done may still be yielded, but not the whole file.
    expect(got.length).toBeLessThan(16);
    expect(Buffer.concat(got).equals(data.subarray(0, got.length * 65536))).toBe(true);
    await expect(file.close()).resolves.toBeUndefined();
  });

  it('a signal aborted before iteration rejects at once', async () => {
    const { path: p } = tempFile('abc');
    const file = await open(p);
    const ac = new AbortController();
    ac.abort('no');
    const err = await file
      .readChunks({ signal: ac.signal })
      .next()
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: 'no' });
    await file.close();
  });

  it('throws for bad options at the call, not at the first next()', async () => {
    const { path: p } = tempFile('abc');
    const file = await open(p);
    expect(() => file.readChunks({ chunkSize: 0 })).toThrow(RangeError);
    expect(() => file.readChunks({ depth: -1 })).toThrow(RangeError);
    expect(() => file.readChunks({ start: -5 })).toThrow(RangeError);
    expect(() => file.readChunks({ chunkSize: '1' as never })).toThrow(TypeError);
    expect(() => file.readChunks({ reqprio: 21 })).toThrow(RangeError);
    await file.close();
  });
});

describe('writeChunks', () => {
  function sizes(seed: number): number[] {
    return Array.from({ length: 50 }, (_, i) => 1 + ((i * 7919 + seed) % 3000));
  }

  it('writes an array of chunks at position and resolves with the total', async () => {
    const { path: p } = tempFile('0123456789');
    const file = await open(p, 'r+');
    const chunks = [Buffer.from('abc'), new Uint8Array([0x64, 0x65]), Buffer.alloc(0), Buffer.from('fgh')];
    await expect(file.writeChunks(chunks, { position: 3 })).resolves.toBe(8);
    expect(fs.readFileSync(p, 'utf8')).toBe('012abcdefgh');
    await file.close();
  });

  it('writes a generator from position 0 by default', async () => {
    const { path: p } = tempFile('');
    const file = await open(p, 'r+');
    const chunks = sizes(1).map((n) => randomBytes(n));
    function* source() {
      yield* chunks;
    }
    const total = chunks.reduce((s, c) => s + c.length, 0);
    await expect(file.writeChunks(source())).resolves.toBe(total);
    expect(fs.readFileSync(p).equals(Buffer.concat(chunks))).toBe(true);
    await file.close();
  });

  it('writes an async generator exactly, with depth 1 and depth 16', async () => {
    for (const depth of [1, 16]) {
      const { path: p } = tempFile(Buffer.alloc(100, 0x2e));
      const file = await open(p, 'r+');
      const chunks = sizes(depth).map((n) => randomBytes(n));
      async function* source() {
        for (const c of chunks) {
          await new Promise((r) => setImmediate(r));
          yield c;
        }
      }
      const total = chunks.reduce((s, c) => s + c.length, 0);
      await expect(file.writeChunks(source(), { position: 50, depth })).resolves.toBe(total);
      const disk = fs.readFileSync(p);
      expect(disk.subarray(0, 50).equals(Buffer.alloc(50, 0x2e))).toBe(true);
      expect(disk.subarray(50).equals(Buffer.concat(chunks))).toBe(true);
      await file.close();
    }
  });

  it('a Readable is an async iterable source', async () => {
    const data = randomBytes(300_000);
    const { path: p } = tempFile('');
    const file = await open(p, 'r+');
    await expect(file.writeChunks(Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]))).resolves.toBe(
      data.length,
    );
    expect(fs.readFileSync(p).equals(data)).toBe(true);
    await file.close();
  });

  it('rejects with the first error (EBADF on a read-only file) and writes nothing', async () => {
    const { path: p } = tempFile('0123456789');
    const file = await open(p, 'r');
    const chunks = [Buffer.from('aa'), Buffer.from('bb'), Buffer.from('cc'), Buffer.from('dd'), Buffer.from('ee')];
    const err = await file.writeChunks(chunks, { depth: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AioError);
    expect(err).toMatchObject({ code: 'EBADF', syscall: 'aio_write', path: p });
    expect(fs.readFileSync(p, 'utf8')).toBe('0123456789');
    await file.close();
  });

  // In the next three tests the writes go to a FIFO, where they queue in
  // libc behind a blocked read on the same descriptor: they stay in flight
  // until the test writes a byte for the read. Every assertion comes after
  // everything has settled, so that a failure leaves no write behind.

  /** Reads `n` bytes from the FIFO through libc's queue, so after every write queued before it. */
  async function drain(fd: number, n: number): Promise<string> {
    const reader = AioFile.fromFd(fd);
    const out = Buffer.alloc(n);
    const got = await readAt(reader, out, 0);
    await reader.close();
    return out.subarray(0, got).toString();
  }

  it('rejects on a write error only after the writes in flight settled', async () => {
    const fifo = blockingFifo();
    const file = AioFile.fromFd(fifo.fd);
    const blocker = readAt(file, Buffer.alloc(1), 0);
    let closing: Promise<void> | undefined;
    async function* source() {
      yield Buffer.from('xy');
      // close() starts while 'xy' is in flight, so the next write fails
      // with EBADF, and close() itself waits for 'xy'.
      closing = file.close();
      yield Buffer.from('zz');
    }
    const writing = file.writeChunks(source(), { depth: 4 });
    const state = track(writing);
    await sleep(30);
    const settledEarly = state.settled;
    fs.writeSync(fifo.fd, 'A');
    await expect(blocker).resolves.toBe(1);
    const outcome = await writing.catch((e: unknown) => e);
    await closing;
    // The write in flight ran: the FIFO holds its bytes.
    const written = await drain(fifo.fd, 2);

    expect(settledEarly).toBe(false);
    expect(outcome).toBeInstanceOf(AioError);
    expect(outcome).toMatchObject({ code: 'EBADF', syscall: 'aio_write' });
    expect(written).toBe('xy');
  });

  it('rejects when the source throws, only after the writes in flight settled', async () => {
    const fifo = blockingFifo();
    const file = AioFile.fromFd(fifo.fd);
    const blocker = readAt(file, Buffer.alloc(1), 0);
    const boom = new Error('source failed');
    async function* source() {
      yield Buffer.from('xy');
      throw boom;
    }
    const writing = file.writeChunks(source());
    const state = track(writing);
    await sleep(30);
    // 'xy' is still queued in libc behind the blocked read.
    const settledEarly = state.settled;
    fs.writeSync(fifo.fd, 'A');
    await expect(blocker).resolves.toBe(1);
    const outcome = await writing.catch((e: unknown) => e);
    const written = await drain(fifo.fd, 2);
    await file.close();

    expect(written).toBe('xy');
    expect(outcome).toBe(boom);
    expect(settledEarly).toBe(false);
  });

  it('rejects a chunk that is not a Uint8Array, only after the writes in flight settled', async () => {
    const fifo = blockingFifo();
    const file = AioFile.fromFd(fifo.fd);
    const blocker = readAt(file, Buffer.alloc(1), 0);
    const writing = file.writeChunks([Buffer.from('xy'), 'not bytes' as never]);
    const state = track(writing);
    await sleep(30);
    const settledEarly = state.settled;
    fs.writeSync(fifo.fd, 'A');
    await expect(blocker).resolves.toBe(1);
    const outcome = await writing.catch((e: unknown) => e);
    const written = await drain(fifo.fd, 2);
    await file.close();

    expect(written).toBe('xy');
    expect(outcome).toBeInstanceOf(TypeError);
    expect(settledEarly).toBe(false);
  });

  it('an aborted signal rejects with an AbortError and writes nothing', async () => {
    const { path: p } = tempFile('0123456789');
    const file = await open(p, 'r+');
    const ac = new AbortController();
    ac.abort('stop');
    const err = await file.writeChunks([Buffer.from('abc')], { signal: ac.signal }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: 'stop' });
    expect(fs.readFileSync(p, 'utf8')).toBe('0123456789');
    await file.close();
  });

  it('rejects a source that is not iterable', async () => {
    const { path: p } = tempFile('');
    const file = await open(p, 'r+');
    await expect(file.writeChunks(42 as never)).rejects.toThrow(TypeError);
    await file.close();
  });
});

describe('completions', () => {
  it('yields SigevNone and SigevThread blocks in completion order, each with its result', async () => {
    const fifo = blockingFifo();
    const { fd } = tempFile('abcdef123456');
    const slowBuf = Buffer.alloc(3);
    const fastBuf = Buffer.alloc(4);
    // The FIFO read completes only when the test writes to it.
    const slow = AioCb.fromMutSlice(fifo.fd, 0, slowBuf, 0, SigevThread);
    const fast = AioCb.fromMutSlice(fd, 2, fastBuf, 0, SigevNone);
    const promises = [slow.read(), fast.read()];
    const order: AioCb[] = [];
    const returns: number[] = [];
    for await (const cb of completions([slow, fast])) {
      order.push(cb);
      expect(cb.inProgress).toBe(false);
      returns.push(cb.aioReturn());
      if (order.length === 1) fs.writeSync(fifo.fd, 'xyz');
    }
    expect(order).toHaveLength(2);
    expect(order[0]).toBe(fast);
    expect(order[1]).toBe(slow);
    expect(returns).toEqual([4, 3]);
    expect(fastBuf.toString()).toBe('cdef');
    expect(slowBuf.toString()).toBe('xyz');
    await expect(Promise.all(promises)).resolves.toEqual([3, 4]);
  });

  it('the other way round: a SigevNone block on the FIFO and SigevThread on the file', async () => {
    const fifo = blockingFifo();
    const { fd } = tempFile('abcdef123456');
    const slow = AioCb.fromMutSlice(fifo.fd, 0, Buffer.alloc(2), 0, SigevNone);
    const fast = AioCb.fromMutSlice(fd, 6, Buffer.alloc(6), 0, SigevThread);
    const promises = [slow.read(), fast.read()];
    const order: [AioCb, number][] = [];
    for await (const cb of completions([slow, fast])) {
      order.push([cb, cb.aioReturn()]);
      if (order.length === 1) fs.writeSync(fifo.fd, 'pq');
    }
    expect(order).toEqual([
      [fast, 6],
      [slow, 2],
    ]);
    await expect(Promise.all(promises)).resolves.toEqual([2, 6]);
  });

  it('yields each of many mixed blocks exactly once, with correct data', async () => {
    const data = randomBytes(64 * 1024);
    const { fd } = tempFile(data);
    const cbs = Array.from({ length: 64 }, (_, i) =>
      AioCb.fromMutSlice(fd, i * 1024, Buffer.alloc(1024), 0, i % 2 === 0 ? SigevNone : SigevThread),
    );
    const promises = cbs.map((cb) => cb.read());
    const seen = new Set<AioCb>();
    for await (const cb of completions(cbs)) {
      expect(seen.has(cb)).toBe(false);
      seen.add(cb);
      expect(cb.aioReturn()).toBe(1024);
    }
    expect(seen.size).toBe(64);
    await Promise.all(promises);
    cbs.forEach((cb, i) => {
      expect(Buffer.from(cb.buffer() as Uint8Array).equals(data.subarray(i * 1024, (i + 1) * 1024))).toBe(true);
    });
  });

  it('rejects entries that are not AioCb', async () => {
    await expect(completions([{}] as never).next()).rejects.toThrow(TypeError);
    await expect(completions(42 as never).next()).rejects.toThrow(TypeError);
  });
});

describe('alignedBuffer', () => {
  it('returns a zero-filled Buffer of the requested size', () => {
    const buf = alignedBuffer(8192);
    expect(Buffer.isBuffer(buf)).toBe(true);
    expect(buf.length).toBe(8192);
    expect(buf.every((b) => b === 0)).toBe(true);
    const small = alignedBuffer(100, 64);
    expect(small.length).toBe(100);
    expect(small.every((b) => b === 0)).toBe(true);
    expect(alignedBuffer(0).length).toBe(0);
  });

  it('validates size and alignment', () => {
    expect(() => alignedBuffer(4096, 3000)).toThrow(RangeError);
    expect(() => alignedBuffer(4096, 0)).toThrow(RangeError);
    expect(() => alignedBuffer(4096, -4096)).toThrow(RangeError);
    expect(() => alignedBuffer(-1)).toThrow(RangeError);
    expect(() => alignedBuffer(1.5)).toThrow(RangeError);
    expect(() => alignedBuffer('4096' as never)).toThrow(TypeError);
    expect(() => alignedBuffer(4096, '4096' as never)).toThrow(TypeError);
  });

  it('reads and writes through O_DIRECT', async () => {
    const p = path.join(tempDir(), 'direct');
    fs.writeFileSync(p, '');
    let file: AioFile;
    try {
      file = await open(p, 'r+', 0o666, { direct: true });
    } catch (e) {
      // Some filesystems (tmpfs before Linux 6.6, some overlays) refuse
      // O_DIRECT at open() with EINVAL. The library must pass that error
      // through unchanged and fs-shaped; nothing else can be checked there.
      expect(e).toMatchObject({ code: 'EINVAL', syscall: 'open', path: p });
      return;
    }
    try {
      // The flag reached the kernel: /proc shows it on the descriptor.
      const info = fs.readFileSync(`/proc/self/fdinfo/${file.fd}`, 'utf8');
      const flags = Number.parseInt(/flags:\s*([0-7]+)/.exec(info)?.[1] ?? '0', 8);
      expect(flags & fs.constants.O_DIRECT).toBe(fs.constants.O_DIRECT);

      // O_DIRECT needs aligned memory: a misaligned buffer would fail EINVAL.
      const out = alignedBuffer(8192);
      randomBytes(8192).copy(out);
      await expect(writeAt(file, out, 0)).resolves.toBe(8192);
      expect(fs.readFileSync(p).equals(out)).toBe(true);

      const back = alignedBuffer(8192);
      await expect(readAt(file, back, 0)).resolves.toBe(8192);
      expect(back.equals(out)).toBe(true);

      const half = alignedBuffer(4096, 4096);
      await expect(readAt(file, half, 4096)).resolves.toBe(4096);
      expect(half.equals(out.subarray(4096))).toBe(true);
      await expect(readAt(file, alignedBuffer(4096), 8192)).resolves.toBe(0);
    } finally {
      await file.close();
    }
  });
});
