// The concurrency limit: at most `concurrency` operations of one file reach
// libc; the rest wait in the library's queue, in call order.
//
// Observation on a FIFO: glibc runs one request per descriptor and orders
// the requests queued behind the running one by priority (a higher
// `priority` value runs later). A normal-priority read that reaches glibc
// while a low-priority read is queued there overtakes it; one held back in
// the library's queue cannot.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AioFile, open } from '../src/index.js';
import { blockingFifo, readAt, tempFile, writeAt } from './helpers.js';

/** Resolves once `done` holds more than `n` entries. */
function whenMoreThan(done: unknown[], n: number): Promise<void> {
  return new Promise((resolve) => {
    const poll = () => (done.length > n ? resolve() : setImmediate(poll));
    poll();
  });
}

/**
 * Three one-byte reads on a FIFO: first, then low priority, then normal
 * priority. Writes one byte at a time and waits for a read to resolve after
 * each; returns the order they resolved in and the byte each got.
 */
async function threeReads(concurrency: number): Promise<{ order: string[]; bytes: Record<string, string> }> {
  const fifo = blockingFifo();
  const file = AioFile.fromFd(fifo.fd, { concurrency });
  const bufs = { first: Buffer.alloc(1), low: Buffer.alloc(1), normal: Buffer.alloc(1) };
  const order: string[] = [];
  const reads = [
    readAt(file, bufs.first, 0).then(() => order.push('first')),
    readAt(file, bufs.low, 0, { reqprio: 5 }).then(() => order.push('low')),
    readAt(file, bufs.normal, 0, { reqprio: 0 }).then(() => order.push('normal')),
  ];
  for (const [i, byte] of ['A', 'B', 'C'].entries()) {
    fs.writeSync(fifo.fd, byte);
    await whenMoreThan(order, i);
  }
  await Promise.all(reads);
  await file.close();
  const bytes = Object.fromEntries(Object.entries(bufs).map(([k, b]) => [k, b.toString()]));
  return { order, bytes };
}

describe('concurrency limit', () => {
  it('with concurrency 2, a third read reaches libc only after one completes', async () => {
    // The low-priority read is in libc with the first; the third waits in
    // the library's queue, so it cannot overtake the low-priority one.
    await expect(threeReads(2)).resolves.toEqual({
      order: ['first', 'low', 'normal'],
      bytes: { first: 'A', low: 'B', normal: 'C' },
    });
  });

  it('control: with room for all three, the third overtakes the low-priority read in libc', async () => {
    await expect(threeReads(64)).resolves.toEqual({
      order: ['first', 'normal', 'low'],
      bytes: { first: 'A', low: 'C', normal: 'B' },
    });
  });

  it('with concurrency 2, bytes go one at a time to the reads in the order they were admitted', async () => {
    const fifo = blockingFifo();
    const file = AioFile.fromFd(fifo.fd, { concurrency: 2 });
    const bufs = Array.from({ length: 6 }, () => Buffer.alloc(1));
    const done: number[] = [];
    const reads = bufs.map((b, i) =>
      readAt(file, b, 0, { reqprio: i % 2 === 0 ? 3 : 0 }).then((n) => {
        done.push(i);
        return n;
      }),
    );
    // One byte at a time: each completion admits the next queued read.
    for (let i = 0; i < 6; i++) {
      fs.writeSync(fifo.fd, String.fromCharCode(0x41 + i));
      await whenMoreThan(done, i);
    }
    await expect(Promise.all(reads)).resolves.toEqual([1, 1, 1, 1, 1, 1]);
    // At most one read ever waits in libc behind the running one, so the
    // low-priority reads (0, 2, 4) are never overtaken; with all six in libc
    // the order would be A to 0, then 1, 3, 5, 2, 4.
    expect(bufs.map((b) => b.toString()).join('')).toBe('ABCDEF');
    expect(done).toEqual([0, 1, 2, 3, 4, 5]);
    await file.close();
  });

  it('with concurrency 1, priorities cannot reorder anything', async () => {
    const fifo = blockingFifo();
    const file = AioFile.fromFd(fifo.fd, { concurrency: 1 });
    const bufs = Array.from({ length: 5 }, () => Buffer.alloc(1));
    const reads = bufs.map((b, i) => readAt(file, b, 0, { reqprio: 5 - i }));
    fs.writeSync(fifo.fd, 'ABCDE');
    await expect(Promise.all(reads)).resolves.toEqual([1, 1, 1, 1, 1]);
    expect(bufs.map((b) => b.toString()).join('')).toBe('ABCDE');
    await file.close();
  });

  it('a regular file with concurrency 4 completes 200 concurrent reads with the right bytes', async () => {
    const data = randomBytes(256 * 1024);
    const { path: p } = tempFile(data);
    const file = await open(p, 'r', 0o666, { concurrency: 4 });
    const reads = Array.from({ length: 200 }, (_, i) => {
      const position = (i * 1297) % (data.length - 4096);
      const buffer = Buffer.alloc(1 + ((i * 37) % 4096));
      return { position, buffer };
    });
    const counts = await Promise.all(reads.map((r) => readAt(file, r.buffer, r.position)));
    expect(counts).toEqual(reads.map((r) => r.buffer.length));
    for (const r of reads) {
      expect(r.buffer.equals(data.subarray(r.position, r.position + r.buffer.length))).toBe(true);
    }
    await file.close();
  });

  it('a regular file with concurrency 4 takes 200 concurrent writes and reads mixed', async () => {
    const { path: p } = tempFile(Buffer.alloc(200 * 64));
    const file = await open(p, 'r+', 0o666, { concurrency: 4 });
    const chunks = Array.from({ length: 200 }, () => randomBytes(64));
    const writes = chunks.map((c, i) => writeAt(file, c, i * 64));
    await expect(Promise.all(writes)).resolves.toEqual(chunks.map(() => 64));
    const backs = chunks.map(() => Buffer.alloc(64));
    await Promise.all(backs.map((b, i) => readAt(file, b, i * 64)));
    backs.forEach((b, i) => {
      expect(b.equals(chunks[i] as Buffer)).toBe(true);
    });
    expect(fs.readFileSync(p).equals(Buffer.concat(chunks))).toBe(true);
    await file.close();
  });
});
