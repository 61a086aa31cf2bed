// AioFile.batch: one promise per entry, submitted through lio_listio;
// failures stay per entry; lists longer than the concurrency limit or the
// list limit are split.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { getEventListeners } from 'node:events';
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { AbortError, AioError, AioFile, type BatchOp, open } from '../src/index.js';
import { blockingFifo, readAt, tempFile } from './helpers.js';

const INITIAL = 'abcdef123456';
const { EBADF, ENOSPC } = osConstants.errno;

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * n;
  };
}

describe('batch', () => {
  it('writes and reads in one batch, with nop entries resolving 0', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r+');
    const rbuf = Buffer.alloc(6);
    const results = file.batch([
      { op: 'write', buffer: Buffer.from('XY'), position: 0 },
      { op: 'nop' },
      { op: 'read', buffer: rbuf, position: 6 },
      { op: 'write', buffer: Buffer.from('tail'), position: 12n },
      { op: 'nop' },
    ]);
    expect(results).toHaveLength(5);
    for (const r of results) expect(r).toBeInstanceOf(Promise);
    await expect(Promise.all(results)).resolves.toEqual([2, 0, 6, 4, 0]);
    expect(rbuf.toString()).toBe('123456');
    expect(fs.readFileSync(p, 'utf8')).toBe('XYcdef123456tail');
    await file.close();
  });

  it('an empty batch returns an empty array', async () => {
    const { fd } = tempFile(INITIAL);
    const file = AioFile.fromFd(fd);
    expect(file.batch([])).toEqual([]);
    await file.close();
  });

  it('a failing entry rejects only its own promise', async () => {
    // /dev/full: writes fail with ENOSPC, reads give zeros.
    const file = await open('/dev/full', 'r+');
    const rbuf = Buffer.alloc(4, 0xff);
    const ops = [
      { op: 'write', buffer: Buffer.from('x'), position: 0 },
      { op: 'read', buffer: rbuf, position: 0 },
      { op: 'bogus' },
      { op: 'nop' },
      { op: 'read', buffer: 'nope', position: 0 },
      { op: 'write', buffer: Buffer.from('y'), position: -1 },
      null,
    ] as unknown as BatchOp[];
    let results: Promise<number>[] = [];
    expect(() => {
      results = file.batch(ops);
    }).not.toThrow();
    const [write, read, bogus, nop, badBuffer, badPosition, nullEntry] = await Promise.allSettled(results);
    expect(write).toMatchObject({ status: 'rejected' });
    const err = (write as PromiseRejectedResult).reason;
    expect(err).toBeInstanceOf(AioError);
    expect(err).toMatchObject({ code: 'ENOSPC', errno: -ENOSPC, syscall: 'aio_write', path: '/dev/full' });
    expect(read).toEqual({ status: 'fulfilled', value: 4 });
    expect(rbuf.equals(Buffer.alloc(4))).toBe(true);
    expect(bogus).toMatchObject({ status: 'rejected', reason: expect.any(TypeError) });
    expect(nop).toEqual({ status: 'fulfilled', value: 0 });
    expect(badBuffer).toMatchObject({ status: 'rejected', reason: expect.any(TypeError) });
    expect(badPosition).toMatchObject({ status: 'rejected', reason: expect.any(RangeError) });
    expect(nullEntry).toMatchObject({ status: 'rejected', reason: expect.any(TypeError) });
    await file.close();
  });

  it('throws a TypeError when ops is not an array', async () => {
    const { fd } = tempFile(INITIAL);
    const file = AioFile.fromFd(fd);
    expect(() => file.batch('read' as never)).toThrow(TypeError);
    await file.close();
  });

  it('bad options reject every entry', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r+');
    const results = file.batch([{ op: 'write', buffer: Buffer.from('Q'), position: 0 }, { op: 'nop' }], {
      signal: 'stop' as never,
    });
    for (const r of results) await expect(r).rejects.toThrow(TypeError);
    expect(fs.readFileSync(p, 'utf8')).toBe(INITIAL);
    await file.close();
  });

  it('a batch larger than the concurrency limit is split and all of it succeeds', async () => {
    const { path: p } = tempFile('');
    const file = await open(p, 'r+', 0o666, { concurrency: 8 });
    const chunks = Array.from({ length: 100 }, () => randomBytes(37));
    const writes = file.batch(chunks.map((buffer, i) => ({ op: 'write' as const, buffer, position: i * 37 })));
    await expect(Promise.all(writes)).resolves.toEqual(chunks.map(() => 37));
    expect(fs.readFileSync(p).equals(Buffer.concat(chunks))).toBe(true);

    const backs = chunks.map(() => Buffer.alloc(37));
    const reads = file.batch(backs.map((buffer, i) => ({ op: 'read' as const, buffer, position: 99 * 37 - i * 37 })));
    await expect(Promise.all(reads)).resolves.toEqual(chunks.map(() => 37));
    backs.forEach((b, i) => {
      expect(b.equals(chunks[99 - i] as Buffer)).toBe(true);
    });
    await file.close();
  });

  it('a batch larger than the platform list limit (1024 where there is none) is split', async () => {
    const { path: p } = tempFile('');
    const file = await open(p, 'r+', 0o666, { concurrency: 4096 });
    const data = randomBytes(3000 * 4);
    const writes = file.batch(
      Array.from({ length: 3000 }, (_, i) => ({
        op: 'write' as const,
        buffer: data.subarray(i * 4, i * 4 + 4),
        position: i * 4,
      })),
    );
    const settled = await Promise.allSettled(writes);
    expect(settled.filter((s) => s.status === 'rejected')).toEqual([]);
    expect(fs.readFileSync(p).equals(data)).toBe(true);
    await file.close();
  });

  it('after close every entry rejects with EBADF and the path', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r+');
    await file.close();
    const results = file.batch([
      { op: 'write', buffer: Buffer.from('X'), position: 0 },
      { op: 'read', buffer: Buffer.alloc(1), position: 0 },
      { op: 'nop' },
    ]);
    for (const r of results) {
      const err = await r.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AioError);
      expect(err).toMatchObject({ code: 'EBADF', errno: -EBADF, path: p });
    }
    expect(fs.readFileSync(p, 'utf8')).toBe(INITIAL);
  });

  it('a signal aborted before the call rejects every entry with an AbortError and submits nothing', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r+');
    const ac = new AbortController();
    const reason = new Error('changed my mind');
    ac.abort(reason);
    const rbuf = Buffer.alloc(3, 0x2e);
    const results = file.batch(
      [
        { op: 'write', buffer: Buffer.from('XYZ'), position: 0 },
        { op: 'read', buffer: rbuf, position: 0 },
        { op: 'nop' },
      ],
      { signal: ac.signal },
    );
    for (const r of results) {
      const err = await r.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AbortError);
      expect(err).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
      expect((err as Error).cause).toBe(reason);
    }
    expect(rbuf.toString()).toBe('...');
    expect(fs.readFileSync(p, 'utf8')).toBe(INITIAL);
    await file.close();
  });

  it('a signal aborted while the entries are queued in libc cancels them', async () => {
    const fifo = blockingFifo();
    const file = AioFile.fromFd(fifo.fd);
    const first = Buffer.alloc(1);
    const blocker = readAt(file, first, 0);
    const ac = new AbortController();
    const b1 = Buffer.alloc(1);
    const b2 = Buffer.alloc(1);
    const results = file.batch(
      [
        { op: 'read', buffer: b1, position: 0 },
        { op: 'read', buffer: b2, position: 0 },
      ],
      { signal: ac.signal },
    );
    ac.abort();
    for (const r of results) {
      const err = await r.catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
      expect((err as Error).cause).toBe(ac.signal.reason);
    }
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    fs.writeSync(fifo.fd, 'A');
    await expect(blocker).resolves.toBe(1);
    expect(first.toString()).toBe('A');
    // The cancelled entries never ran: the next byte goes to a new read.
    const next = Buffer.alloc(1);
    const nextRead = readAt(file, next, 0);
    fs.writeSync(fifo.fd, 'B');
    await expect(nextRead).resolves.toBe(1);
    expect(next.toString()).toBe('B');
    expect(b1[0]).toBe(0);
    expect(b2[0]).toBe(0);
    await file.close();
  });

  it('a signal aborted after the batch completed changes nothing and leaves no listener', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r+');
    const ac = new AbortController();
    const rbuf = Buffer.alloc(4);
    const results = file.batch(
      [
        { op: 'read', buffer: rbuf, position: 8 },
        { op: 'write', buffer: Buffer.from('W'), position: 0 },
      ],
      { signal: ac.signal },
    );
    await expect(Promise.all(results)).resolves.toEqual([4, 1]);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    ac.abort();
    await expect(Promise.all(results)).resolves.toEqual([4, 1]);
    expect(rbuf.toString()).toBe('3456');
    expect(fs.readFileSync(p, 'utf8')).toBe('Wbcdef123456');
    await file.close();
  });

  it('keeps the AsyncLocalStorage store of the call', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r');
    const als = new AsyncLocalStorage<string>();
    const got = await als.run('batch', async () => {
      await Promise.all(file.batch([{ op: 'read', buffer: Buffer.alloc(2), position: 0 }]));
      return als.getStore();
    });
    expect(got).toBe('batch');
    await file.close();
  });

  it('1000 random reads and writes match an in-memory model', async () => {
    // 1000 distinct 64-byte blocks, one operation per block, so the result
    // does not depend on the order libc runs the entries in. The file ends
    // inside the last block so that some reads are short.
    const BLOCK = 64;
    const N = 1000;
    const SIZE = N * BLOCK - 40;
    expect(SIZE - (N - 1) * BLOCK).toBe(24);
    const rand = prng(0x5eed);
    const initial = randomBytes(SIZE);
    const { path: p } = tempFile(initial);
    const model = Buffer.from(initial);
    const file = await open(p, 'r+', 0o666, { concurrency: 100 });

    const blocks = Array.from({ length: N }, (_, i) => i);
    for (let i = N - 1; i > 0; i--) {
      const j = Math.floor(rand(i + 1));
      [blocks[i], blocks[j]] = [blocks[j] as number, blocks[i] as number];
    }
    const ops: BatchOp[] = [];
    const expected: { kind: 'read' | 'write' | 'nop'; buffer?: Buffer; n: number; bytes?: Buffer }[] = [];
    for (const block of blocks) {
      const r = rand(1);
      const start = block * BLOCK + Math.floor(rand(BLOCK / 2));
      const len = 1 + Math.floor(rand(BLOCK / 2));
      if (block === N - 1) {
        // The last block holds 24 bytes of file: a 16-byte read at 20 is short (4).
        const buffer = Buffer.alloc(16, 0xee);
        const position = block * BLOCK + 20;
        ops.push({ op: 'read', buffer, position });
        const n = SIZE - position;
        expected.push({ kind: 'read', buffer, n, bytes: initial.subarray(position, position + n) });
      } else if (r < 0.05) {
        ops.push({ op: 'nop' });
        expected.push({ kind: 'nop', n: 0 });
      } else if (r < 0.5 && start + len <= SIZE) {
        const buffer = randomBytes(len);
        ops.push({ op: 'write', buffer, position: rand(1) < 0.5 ? start : BigInt(start) });
        buffer.copy(model, start);
        expected.push({ kind: 'write', n: len });
      } else {
        const buffer = Buffer.alloc(len, 0xee);
        ops.push({ op: 'read', buffer, position: start });
        const n = Math.max(0, Math.min(len, SIZE - start));
        // Reads never overlap a write of this batch, so the initial bytes are the answer.
        expected.push({ kind: 'read', buffer, n, bytes: initial.subarray(start, start + n) });
      }
    }
    const results = await Promise.all(file.batch(ops));
    expect(results).toEqual(expected.map((e) => e.n));
    for (const e of expected) {
      if (e.kind !== 'read') continue;
      const { buffer, n, bytes } = e as { buffer: Buffer; n: number; bytes: Buffer };
      expect(buffer.subarray(0, n).equals(bytes)).toBe(true);
      // Bytes past a short read are untouched.
      expect(buffer.subarray(n).every((b) => b === 0xee)).toBe(true);
    }
    expect(fs.readFileSync(p).equals(model)).toBe(true);

    // Read the whole model back in one more random batch of 1000 reads.
    const checks = Array.from({ length: 1000 }, () => {
      const position = Math.floor(rand(SIZE));
      return { position, buffer: Buffer.alloc(1 + Math.floor(rand(200))) };
    });
    const counts = await Promise.all(file.batch(checks.map((c) => ({ op: 'read' as const, ...c }))));
    checks.forEach((c, i) => {
      const want = model.subarray(c.position, c.position + c.buffer.length);
      expect(counts[i]).toBe(want.length);
      expect(c.buffer.subarray(0, want.length).equals(want)).toBe(true);
    });
    await file.close();
  });
});
