// aioSuspend: nix's test_aio_suspend ported, plus the glibc rules (returns at
// once when a listed request is done or none is listed, EAGAIN on timeout)
// and the library's own promise: the wait never blocks the event loop.
import { constants as osConstants } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AioCb, AioError, aioSuspend, LioOpcode, SigevNone, SigevSignal, SigevThread } from '../src/index.js';
import { blockingFifo, rejection, tempFile, track, waitUntilReading } from './helpers.js';

const INITIAL = 'abcdef123456';
const { EINPROGRESS } = osConstants.errno;

// A stray SIGUSR2 with no listener would kill the test process.
const ignore = () => {};
beforeAll(() => {
  process.on('SIGUSR2', ignore);
});
afterAll(() => {
  process.off('SIGUSR2', ignore);
});

describe('resolves at once', () => {
  it('for an empty list and a list holding only null', async () => {
    await expect(aioSuspend([])).resolves.toBeUndefined();
    await expect(aioSuspend([null])).resolves.toBeUndefined();
    await expect(aioSuspend([null, null], 0)).resolves.toBeUndefined();
  });

  it('when a listed block was never submitted', async () => {
    const { fd } = tempFile(INITIAL);
    const idle = AioCb.fromMutSlice(fd, 0, Buffer.alloc(1));
    await expect(aioSuspend([idle])).resolves.toBeUndefined();
    await expect(aioSuspend([null, idle], 10)).resolves.toBeUndefined();
  });

  it('when one listed block is done while another still runs', async () => {
    const fifo = blockingFifo();
    const fbuf = Buffer.alloc(3);
    const blocked = AioCb.fromMutSlice(fifo.fd, 0, fbuf);
    const pBlocked = blocked.read();
    await waitUntilReading(fifo.fd);

    const { fd } = tempFile(INITIAL);
    const buf = Buffer.alloc(4);
    const done = AioCb.fromMutSlice(fd, 2, buf);
    await expect(done.read()).resolves.toBe(4);
    // The FIFO read still blocks: only the completed block can end the wait.
    await expect(aioSuspend([blocked, done])).resolves.toBeUndefined();
    await expect(aioSuspend([blocked, null, done], 0)).resolves.toBeUndefined();
    expect(blocked.inProgress).toBe(true);
    expect(buf.toString()).toBe('cdef');

    fifo.release(3);
    await expect(pBlocked).resolves.toBe(3);
    expect(fbuf.toString()).toBe('***');
  });
});

describe('waits', () => {
  // nix's test_aio_suspend: a write and a read with SigevNone, suspend until
  // both are done.
  it('until every SigevNone operation of a pair completed (nix test_aio_suspend)', async () => {
    const { fd } = tempFile(INITIAL);
    const rbuf = Buffer.alloc(6);
    const wcb = AioCb.fromSlice(fd, 0, Buffer.from('CDEF'), 0, SigevNone, LioOpcode.LIO_WRITE);
    const rcb = AioCb.fromMutSlice(fd, 6, rbuf, 0, SigevNone, LioOpcode.LIO_READ);
    const pw = wcb.write();
    const pr = rcb.read();
    // As nix does: suspend (at once when one is already done) until neither runs.
    do {
      await aioSuspend([wcb, rcb], 10_000);
    } while (wcb.inProgress || rcb.inProgress);
    expect(wcb.aioReturn()).toBe(4);
    expect(rcb.aioReturn()).toBe(6);
    await expect(pw).resolves.toBe(4);
    await expect(pr).resolves.toBe(6);
    expect(rbuf.toString()).toBe('123456');
  });

  it('until a SigevNone read completes, and settles its promise', async () => {
    const fifo = blockingFifo();
    const buf = Buffer.alloc(4, 0x2e);
    const cb = AioCb.fromMutSlice(fifo.fd, 0, buf, 0, SigevNone);
    const p = cb.read();
    const t = track(p);
    const waiting = aioSuspend([cb]);
    const w = track(waiting);
    await waitUntilReading(fifo.fd);
    expect(w.settled).toBe(false);
    expect(t.settled).toBe(false);
    fifo.release(4);
    await expect(waiting).resolves.toBeUndefined();
    // Observed by aioSuspend: the promise settles without error() or aioReturn().
    await expect(p).resolves.toBe(4);
    expect(buf.toString()).toBe('****');
    expect(cb.aioReturn()).toBe(4);
  });

  it('for SigevSignal and SigevThread blocks too', async () => {
    const { fd } = tempFile(INITIAL);
    const b1 = Buffer.alloc(3);
    const b2 = Buffer.alloc(3);
    const sig = AioCb.fromMutSlice(fd, 0, b1, 0, SigevSignal('SIGUSR2'));
    const thr = AioCb.fromMutSlice(fd, 9, b2, 0, SigevThread);
    const ps = [sig.read(), thr.read()];
    while (sig.inProgress || thr.inProgress) await aioSuspend([sig, thr]);
    await expect(Promise.all(ps)).resolves.toEqual([3, 3]);
    expect(b1.toString()).toBe('abc');
    expect(b2.toString()).toBe('456');
  });

  it('several waits on one block all resolve', async () => {
    const fifo = blockingFifo();
    const buf = Buffer.alloc(2);
    const cb = AioCb.fromMutSlice(fifo.fd, 0, buf, 0, SigevNone);
    const p = cb.read();
    const waits = [aioSuspend([cb]), aioSuspend([null, cb]), aioSuspend([cb], 10_000)];
    await waitUntilReading(fifo.fd);
    fifo.release(2);
    await expect(Promise.all(waits)).resolves.toEqual([undefined, undefined, undefined]);
    await expect(p).resolves.toBe(2);
    expect(buf.toString()).toBe('**');
  });
});

describe('timeout', () => {
  it('rejects with AioError EAGAIN (syscall aio_suspend) when nothing completes', async () => {
    const fifo = blockingFifo();
    const buf = Buffer.alloc(4, 0x2e);
    const cb = AioCb.fromMutSlice(fifo.fd, 0, buf);
    const p = cb.read();
    await waitUntilReading(fifo.fd);

    async function callerFrame() {
      return await aioSuspend([cb], 50);
    }
    const err = await rejection(callerFrame());
    expect(err).toBeInstanceOf(AioError);
    expect(err).toMatchObject({ code: 'EAGAIN', errno: -osConstants.errno.EAGAIN, syscall: 'aio_suspend' });
    expect((err as Error).message).toMatch(/^EAGAIN: .*, aio_suspend$/);
    expect((err as Error).stack).toContain('callerFrame');
    expect(cb.inProgress).toBe(true);
    expect(cb.error()).toBe(EINPROGRESS);
    // A zero timeout polls.
    await expect(aioSuspend([cb], 0)).rejects.toMatchObject({ code: 'EAGAIN' });

    fifo.release(4);
    await expect(p).resolves.toBe(4);
    expect(buf.toString()).toBe('****');
  });

  it('a timed-out wait does not disturb a later one', async () => {
    const fifo = blockingFifo();
    const cb = AioCb.fromMutSlice(fifo.fd, 0, Buffer.alloc(1), 0, SigevNone);
    const p = cb.read();
    await waitUntilReading(fifo.fd);
    await expect(aioSuspend([cb], 20)).rejects.toMatchObject({ code: 'EAGAIN' });
    const later = aioSuspend([cb]);
    fifo.release(1);
    await expect(later).resolves.toBeUndefined();
    await expect(p).resolves.toBe(1);
  });
});

describe('event loop', () => {
  it('keeps running while aioSuspend waits: a 10 ms timer fires and releases the read', async () => {
    const fifo = blockingFifo();
    const buf = Buffer.alloc(4, 0x2e);
    const cb = AioCb.fromMutSlice(fifo.fd, 0, buf, 0, SigevNone);
    const p = cb.read();
    await waitUntilReading(fifo.fd);
    const order: string[] = [];
    const waiting = aioSuspend([cb]).then(() => order.push('suspend'));
    // Only the timer can end the wait: if the loop blocked, this would hang.
    setTimeout(() => {
      order.push('timer');
      fifo.release(4);
    }, 10);
    await waiting;
    expect(order).toEqual(['timer', 'suspend']);
    await expect(p).resolves.toBe(4);
    expect(buf.toString()).toBe('****');
  });
});

describe('bad arguments', () => {
  it.each([
    ['undefined', undefined],
    ['null', null],
    ['an AioCb instead of a list', 'cb'],
    ['a string', 'abc'],
    ['an object', { length: 1, 0: null }],
  ])('a list that is %s rejects with a TypeError', async (_name, list) => {
    const { fd } = tempFile(INITIAL);
    const arg = list === 'cb' ? AioCb.fromMutSlice(fd, 0, Buffer.alloc(1)) : list;
    const err = await rejection(aioSuspend(arg as never));
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(/list/);
  });

  it.each([
    [[{}]],
    [[1]],
    [['x']],
    [[undefined]],
  ])('a list entry that is not AioCb or null (%j) rejects with a TypeError', async (list) => {
    const err = await rejection(aioSuspend(list as never));
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(/list entries/);
  });

  it.each([
    ['-1', -1, RangeError],
    ['-0.5', -0.5, RangeError],
    ['NaN', Number.NaN, RangeError],
    ['Infinity', Number.POSITIVE_INFINITY, RangeError],
    ["'10'", '10', TypeError],
    ['10n', 10n, TypeError],
    ['null', null, TypeError],
  ])('timeoutMs %s rejects with %O', async (_name, timeout, cls) => {
    const { fd } = tempFile(INITIAL);
    const cb = AioCb.fromMutSlice(fd, 0, Buffer.alloc(1));
    const err = await rejection(aioSuspend([cb], timeout as never));
    expect(err).toBeInstanceOf(cls);
    expect((err as Error).message).toMatch(/timeoutMs/);
  });

  it('never throws synchronously', () => {
    expect(() => aioSuspend('x' as never).catch(() => {})).not.toThrow();
    expect(() => aioSuspend([], -1).catch(() => {})).not.toThrow();
  });
});
