// AbortSignal on AioFile operations: the four phases, listener hygiene,
// AbortSignal.timeout and AbortSignal.any, and close() while busy.
//
// The FIFO from blockingFifo() makes the phases deterministic: a read on it
// blocks inside glibc until bytes are written, holding glibc's one request
// slot for the descriptor, so reads submitted after it stay queued in glibc
// (cancellable) and reads beyond the file's concurrency limit stay in the
// library's own queue.
import { getEventListeners } from 'node:events';
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { AbortError, AioError, AioFile, open } from '../src/index.js';
import { blockingFifo, glibcCaughtUp, readAt, rejection, tempFile, track, writeAt } from './helpers.js';

const INITIAL = 'abcdef123456';
const { EBADF, ECANCELED } = osConstants.errno;

function expectAbortError(err: unknown, reason: unknown): void {
  expect(err).toBeInstanceOf(AbortError);
  expect(err).toBeInstanceOf(Error);
  expect(err).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
  expect((err as Error).cause).toBe(reason);
}

describe('file.read cancellation phases', () => {
  it('phase 1: aborted before the call', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r+');
    const ac = new AbortController();
    const reason = new Error('not needed');
    ac.abort(reason);

    const buf = Buffer.alloc(4, 0x2e);
    expectAbortError(await rejection(readAt(file, buf, 0, { signal: ac.signal })), reason);
    expect(buf.toString()).toBe('....');
    // Nothing was submitted: a write never reaches the file.
    expectAbortError(await rejection(writeAt(file, Buffer.from('XXXX'), 0, { signal: ac.signal })), reason);
    expectAbortError(await rejection(file.sync({ signal: ac.signal })), reason);
    expectAbortError(await rejection(file.datasync({ signal: ac.signal })), reason);
    expect(fs.readFileSync(p, 'utf8')).toBe(INITIAL);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);

    // Without a reason, the cause is the signal's DOMException.
    const plain = new AbortController();
    plain.abort();
    const err = await rejection(readAt(file, buf, 0, { signal: plain.signal }));
    expectAbortError(err, plain.signal.reason);
    expect((err as Error & { cause: { name: string } }).cause.name).toBe('AbortError');
    await file.close();
  });

  it('phase 1: nothing reaches a blocking descriptor', async () => {
    const fifo = blockingFifo();
    const file = AioFile.fromFd(fifo.fd);
    const ac = new AbortController();
    ac.abort('early');
    const aborted = Buffer.alloc(1);
    expectAbortError(await rejection(readAt(file, aborted, 0, { signal: ac.signal })), 'early');
    // Had it been submitted it would take the first byte.
    const next = Buffer.alloc(1);
    const read = readAt(file, next, 0);
    fs.writeSync(fifo.fd, 'A');
    await expect(read).resolves.toBe(1);
    expect(next.toString()).toBe('A');
    expect(aborted[0]).toBe(0);
    await file.close();
  });

  it('phase 2: aborted while queued', async () => {
    const fifo = blockingFifo();
    const file = AioFile.fromFd(fifo.fd, { concurrency: 1 });
    const first = Buffer.alloc(1);
    const running = readAt(file, first, 0);
    const ac = new AbortController();
    const reason = new Error('queued too long');
    const queuedBuf = Buffer.alloc(1);
    const queued = readAt(file, queuedBuf, 0, { signal: ac.signal });
    const queuedState = track(queued);
    await sleep(10);
    expect(queuedState.settled).toBe(false);
    ac.abort(reason);
    expectAbortError(await rejection(queued), reason);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);

    fs.writeSync(fifo.fd, 'A');
    await expect(running).resolves.toBe(1);
    expect(first.toString()).toBe('A');
    // The aborted read never ran: the next byte goes to the next read, and
    // the place it would have taken is free again.
    const next = Buffer.alloc(1);
    const nextRead = readAt(file, next, 0);
    fs.writeSync(fifo.fd, 'B');
    await expect(nextRead).resolves.toBe(1);
    expect(next.toString()).toBe('B');
    expect(queuedBuf[0]).toBe(0);
    await file.close();
  });

  it('phase 2: aborting one queued read leaves the others queued in order', async () => {
    const fifo = blockingFifo();
    const file = AioFile.fromFd(fifo.fd, { concurrency: 1 });
    const bufs = Array.from({ length: 4 }, () => Buffer.alloc(1));
    const ac = new AbortController();
    const reads = bufs.map((b, i) => readAt(file, b, 0, i === 2 ? { signal: ac.signal } : undefined));
    ac.abort();
    expectAbortError(await rejection(reads[2] as Promise<number>), ac.signal.reason);
    fs.writeSync(fifo.fd, 'ABC');
    await expect(Promise.all([reads[0], reads[1], reads[3]])).resolves.toEqual([1, 1, 1]);
    expect(bufs.map((b) => b.toString())).toEqual(['A', 'B', '\0', 'C']);
    await file.close();
  });

  it('phase 3: aborted in flight', async () => {
    const fifo = blockingFifo();
    const file = AioFile.fromFd(fifo.fd, { concurrency: 64 });
    const firstAc = new AbortController();
    const first = Buffer.alloc(1);
    const running = readAt(file, first, 0, { signal: firstAc.signal });
    const runningState = track(running);
    await glibcCaughtUp();

    // Submitted to glibc, queued behind the running read: aio_cancel works.
    const secondAc = new AbortController();
    const reason = new Error('in flight');
    const second = Buffer.alloc(1);
    const queued = readAt(file, second, 0, { signal: secondAc.signal });
    secondAc.abort(reason);
    expectAbortError(await rejection(queued), reason);
    expect(getEventListeners(secondAc.signal, 'abort')).toHaveLength(0);

    // The running read cannot be cancelled: it settles with its real result.
    firstAc.abort(new Error('too late'));
    await sleep(20);
    expect(runningState.settled).toBe(false);
    fs.writeSync(fifo.fd, 'A');
    await expect(running).resolves.toBe(1);
    expect(first.toString()).toBe('A');
    expect(getEventListeners(firstAc.signal, 'abort')).toHaveLength(0);

    // The cancelled read never consumed a byte.
    const next = Buffer.alloc(1);
    const nextRead = readAt(file, next, 0);
    fs.writeSync(fifo.fd, 'B');
    await expect(nextRead).resolves.toBe(1);
    expect(next.toString()).toBe('B');
    expect(second[0]).toBe(0);
    await file.close();
  });

  it('phase 4: aborted after completion', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r+');
    const ac = new AbortController();
    const buf = Buffer.alloc(4);
    const read = readAt(file, buf, 2, { signal: ac.signal });
    await expect(read).resolves.toBe(4);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    ac.abort(new Error('after the fact'));
    await expect(read).resolves.toBe(4);
    expect(buf.toString()).toBe('cdef');

    const write = writeAt(file, Buffer.from('WXYZ'), 0, { signal: ac.signal });
    // The same signal, now aborted, stops new operations (phase 1) but not finished ones.
    await expect(write).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(fs.readFileSync(p, 'utf8')).toBe(INITIAL);
    await file.close();
  });
});

describe('AbortSignal hygiene and kinds', () => {
  it('one signal reused for 10,000 reads leaves no listener behind', async () => {
    const data = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) & 0xff));
    const { path: p } = tempFile(data);
    const file = await open(p, 'r');
    const ac = new AbortController();
    const { signal } = ac;
    for (let round = 0; round < 10; round++) {
      const bufs = Array.from({ length: 1000 }, () => Buffer.alloc(8));
      const counts = await Promise.all(bufs.map((b, i) => readAt(file, b, (i * 8) % 4096, { signal })));
      expect(counts.every((n) => n === 8)).toBe(true);
      bufs.forEach((b, i) => {
        const at = (i * 8) % 4096;
        expect(b.equals(data.subarray(at, at + 8))).toBe(true);
      });
      expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    }
    expect(signal.aborted).toBe(false);
    await file.close();
  });

  it('AbortSignal.timeout() aborts a read queued in libc', async () => {
    const fifo = blockingFifo();
    const file = AioFile.fromFd(fifo.fd);
    const running = readAt(file, Buffer.alloc(1), 0);
    const signal = AbortSignal.timeout(30);
    const timedBuf = Buffer.alloc(1);
    const err = await rejection(readAt(file, timedBuf, 0, { signal }));
    expectAbortError(err, signal.reason);
    expect((err.cause as DOMException).name).toBe('TimeoutError');
    fs.writeSync(fifo.fd, 'A');
    await expect(running).resolves.toBe(1);
    expect(timedBuf[0]).toBe(0);
    await file.close();
  });

  it('AbortSignal.timeout() aborts a read waiting in the concurrency queue', async () => {
    const fifo = blockingFifo();
    const file = AioFile.fromFd(fifo.fd, { concurrency: 1 });
    const running = readAt(file, Buffer.alloc(1), 0);
    const signal = AbortSignal.timeout(30);
    expectAbortError(await rejection(readAt(file, Buffer.alloc(1), 0, { signal })), signal.reason);
    fs.writeSync(fifo.fd, 'A');
    await expect(running).resolves.toBe(1);
    await file.close();
  });

  it('AbortSignal.any() aborts when any of its signals does', async () => {
    const fifo = blockingFifo();
    const file = AioFile.fromFd(fifo.fd);
    const running = readAt(file, Buffer.alloc(1), 0);
    const a = new AbortController();
    const b = new AbortController();
    const signal = AbortSignal.any([a.signal, b.signal, AbortSignal.timeout(60_000)]);
    const pending = readAt(file, Buffer.alloc(1), 0, { signal });
    const reason = new Error('b says stop');
    b.abort(reason);
    expectAbortError(await rejection(pending), reason);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    fs.writeSync(fifo.fd, 'A');
    await expect(running).resolves.toBe(1);

    // Already aborted through a member: phase 1.
    const gone = AbortSignal.any([new AbortController().signal, b.signal]);
    expectAbortError(await rejection(readAt(file, Buffer.alloc(1), 0, { signal: gone })), reason);
    await file.close();
  });
});

describe('close while busy', () => {
  it('waits for the read in flight, rejects the queued one with ECANCELED, then EBADF', async () => {
    const fifo = blockingFifo();
    const file = AioFile.fromFd(fifo.fd, { concurrency: 1 });
    const first = Buffer.alloc(1);
    const running = readAt(file, first, 0);
    const queuedBuf = Buffer.alloc(1);
    const queued = readAt(file, queuedBuf, 0);
    const runningState = track(running);

    const closing = file.close();
    const closeState = track(closing);
    const err = await rejection(queued);
    expect(err).toBeInstanceOf(AioError);
    expect(err).toMatchObject({ code: 'ECANCELED', errno: -ECANCELED, syscall: 'aio_read' });

    // Later operations fail at once, while close() still waits.
    await expect(readAt(file, Buffer.alloc(1), 0)).rejects.toMatchObject({ code: 'EBADF', errno: -EBADF });
    await expect(writeAt(file, Buffer.from('x'), 0)).rejects.toMatchObject({ code: 'EBADF' });
    await sleep(20);
    expect(closeState.settled).toBe(false);
    expect(runningState.settled).toBe(false);

    fs.writeSync(fifo.fd, 'A');
    await expect(running).resolves.toBe(1);
    expect(first.toString()).toBe('A');
    await expect(closing).resolves.toBeUndefined();
    expect(queuedBuf[0]).toBe(0);
    await expect(readAt(file, Buffer.alloc(1), 0)).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('waits for every read submitted to libc, each with its real bytes', async () => {
    const fifo = blockingFifo();
    const file = AioFile.fromFd(fifo.fd);
    const bufs = [Buffer.alloc(1), Buffer.alloc(2)];
    const reads = bufs.map((b) => readAt(file, b, 0));
    const closing = file.close();
    const closeState = track(closing);
    await sleep(20);
    expect(closeState.settled).toBe(false);
    fs.writeSync(fifo.fd, 'A');
    await expect(reads[0]).resolves.toBe(1);
    await sleep(20);
    expect(closeState.settled).toBe(false);
    fs.writeSync(fifo.fd, 'BC');
    await expect(Promise.all(reads)).resolves.toEqual([1, 2]);
    expect(bufs.map((b) => b.toString())).toEqual(['A', 'BC']);
    await expect(closing).resolves.toBeUndefined();
  });

  it('on a regular file: the admitted reads finish with data, the queued ones are cancelled', async () => {
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff));
    const { path: p } = tempFile(data);
    // nowait: false: cached reads would otherwise all complete inline, and
    // the queue for admission is what close() must cancel here.
    const file = await open(p, 'r', 0o666, { concurrency: 4, nowait: false });
    const fd = file.fd;
    const bufs = Array.from({ length: 100 }, () => Buffer.alloc(10));
    const reads = Promise.allSettled(bufs.map((b, i) => readAt(file, b, i * 10)));
    await file.close();
    const settled = await reads;
    settled.forEach((s, i) => {
      if (i < 4) {
        expect(s).toEqual({ status: 'fulfilled', value: 10 });
        expect((bufs[i] as Buffer).equals(data.subarray(i * 10, i * 10 + 10))).toBe(true);
      } else {
        expect(s).toMatchObject({ status: 'rejected', reason: { code: 'ECANCELED', path: p } });
        expect((bufs[i] as Buffer).equals(Buffer.alloc(10))).toBe(true);
      }
    });
    expect(() => fs.fstatSync(fd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});
