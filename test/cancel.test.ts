// Cancellation, made deterministic with a FIFO: a read on blockingFifo()
// blocks inside glibc until bytes are written and holds glibc's one running
// request for that descriptor, so whatever is submitted after it on the same
// descriptor waits in glibc's queue and can always be cancelled, while the
// blocked read itself never can (AIO_NOTCANCELED).
import { spawnSync } from 'node:child_process';
import { getEventListeners, setMaxListeners } from 'node:events';
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  AbortError,
  AioCancelStat,
  AioCb,
  AioError,
  AioFsyncMode,
  aioCancelAll,
  SigevNone,
  type SigevNotify,
  SigevThread,
} from '../src/index.js';
import { blockingFifo, distEntryUrl, rejection, tempDir, tempFile, waitUntilReading } from './helpers.js';

const INITIAL = 'abcdef123456';
const { EBADF, ECANCELED, EINPROGRESS } = osConstants.errno;

function expectCanceled(err: unknown, syscall = 'aio_read'): void {
  expect(err).toBeInstanceOf(AioError);
  expect(err).toMatchObject({ code: 'ECANCELED', errno: -ECANCELED, syscall });
}

function expectAbortError(err: unknown, reason: unknown): void {
  expect(err).toBeInstanceOf(AbortError);
  expect(err).toBeInstanceOf(Error);
  expect(err).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
  expect((err as Error).cause).toBe(reason);
}

/** A read on the FIFO that glibc is running (blocked in read(2)). */
async function runningRead(fifo: { fd: number }, n = 4): Promise<{ cb: AioCb; buf: Buffer; p: Promise<number> }> {
  const buf = Buffer.alloc(n, 0x2e);
  const cb = AioCb.fromMutSlice(fifo.fd, 0, buf);
  const p = cb.read();
  await waitUntilReading(fifo.fd);
  return { cb, buf, p };
}

const kinds: [string, SigevNotify][] = [
  ['SigevThread', SigevThread],
  ['SigevNone', SigevNone],
];

describe('AioCb.cancel', () => {
  it.each(kinds)('%s: a read queued behind a running one is cancelled', async (_name, sigev) => {
    const fifo = blockingFifo();
    const a = await runningRead(fifo);

    const bbuf = Buffer.alloc(4, 0x2e);
    const b = AioCb.fromMutSlice(fifo.fd, 0, bbuf, 0, sigev);
    const pb = b.read();
    expect(b.inProgress).toBe(true);
    expect(b.error()).toBe(EINPROGRESS);

    expect(b.cancel()).toBe(AioCancelStat.AioCanceled);
    expectCanceled(await rejection(pb));
    expect(b.inProgress).toBe(false);
    expect(b.error()).toBe(ECANCELED);
    expect(() => b.aioReturn()).toThrow(expect.objectContaining({ code: 'ECANCELED', syscall: 'aio_return' }));
    expect(() => b.aioReturn()).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(b.cancel()).toBe(AioCancelStat.AioAllDone);

    // The running read cannot be cancelled and completes with the bytes.
    expect(a.cb.cancel()).toBe(AioCancelStat.AioNotCanceled);
    expect(a.cb.inProgress).toBe(true);
    fifo.release(4);
    await expect(a.p).resolves.toBe(4);
    expect(a.buf.toString()).toBe('****');
    expect(a.cb.aioReturn()).toBe(4);
    expect(a.cb.cancel()).toBe(AioCancelStat.AioAllDone);
    // The cancelled read never touched its buffer.
    expect(bbuf.toString()).toBe('....');
  });

  it('a cancelled write never reaches the descriptor', async () => {
    const fifo = blockingFifo();
    const a = await runningRead(fifo);
    const w = AioCb.fromSlice(fifo.fd, 0, Buffer.from('WXYZ'));
    const pw = w.write();
    expect(w.cancel()).toBe(AioCancelStat.AioCanceled);
    expectCanceled(await rejection(pw), 'aio_write');
    // Had the write run, the blocked read would have taken its bytes.
    fifo.release(4);
    await expect(a.p).resolves.toBe(4);
    expect(a.buf.toString()).toBe('****');
  });

  it('a cancelled block may be submitted again', async () => {
    const fifo = blockingFifo();
    const a = await runningRead(fifo, 2);
    const bbuf = Buffer.alloc(3, 0x2e);
    const b = AioCb.fromMutSlice(fifo.fd, 0, bbuf);
    const pb = b.read();
    expect(b.cancel()).toBe(AioCancelStat.AioCanceled);
    expectCanceled(await rejection(pb));
    fifo.release(2);
    await expect(a.p).resolves.toBe(2);

    const pb2 = b.read();
    await waitUntilReading(fifo.fd);
    expect(b.inProgress).toBe(true);
    fs.writeSync(fifo.fd, 'xyz');
    await expect(pb2).resolves.toBe(3);
    expect(bbuf.toString()).toBe('xyz');
    expect(b.aioReturn()).toBe(3);
  });

  it('cancelling the whole queue keeps each order: only the running read completes', async () => {
    const fifo = blockingFifo();
    const a = await runningRead(fifo, 1);
    const queued = [0, 1, 2].map(() => {
      const buf = Buffer.alloc(1, 0x2e);
      const cb = AioCb.fromMutSlice(fifo.fd, 0, buf);
      return { cb, buf, p: cb.read() };
    });
    // Cancel out of order.
    for (const i of [2, 0, 1]) expect(queued[i]?.cb.cancel()).toBe(AioCancelStat.AioCanceled);
    for (const q of queued) {
      expectCanceled(await rejection(q.p));
      expect(q.buf.toString()).toBe('.');
    }
    fs.writeSync(fifo.fd, 'Q');
    await expect(a.p).resolves.toBe(1);
    expect(a.buf.toString()).toBe('Q');
  });

  it('an operation cancelled with cancel() rejects with ECANCELED even when it has a signal', async () => {
    const fifo = blockingFifo();
    const a = await runningRead(fifo);
    const ac = new AbortController();
    const b = AioCb.fromMutSlice(fifo.fd, 0, Buffer.alloc(4));
    const pb = b.read({ signal: ac.signal });
    expect(b.cancel()).toBe(AioCancelStat.AioCanceled);
    expectCanceled(await rejection(pb));
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    fifo.release(4);
    await expect(a.p).resolves.toBe(4);
  });

  it('cancel() on a bad descriptor throws AioError EBADF', () => {
    const cb = AioCb.fromMutSlice(1_000_000, 0, Buffer.alloc(1));
    let err: unknown;
    try {
      cb.cancel();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AioError);
    expect(err).toMatchObject({ code: 'EBADF', errno: -EBADF, syscall: 'aio_cancel' });
  });
});

describe('aioCancelAll', () => {
  it('cancels every queued request on the descriptor; the running one completes', async () => {
    const fifo = blockingFifo();
    const a = await runningRead(fifo);
    const b = AioCb.fromMutSlice(fifo.fd, 0, Buffer.alloc(4, 0x2e));
    const c = AioCb.fromMutSlice(fifo.fd, 0, Buffer.alloc(4, 0x2e), 0, SigevNone);
    const w = AioCb.fromSlice(fifo.fd, 0, Buffer.from('WXYZ'));
    const pb = b.read();
    const pc = c.read();
    const pw = w.write();

    // glibc: AIO_NOTCANCELED because one request (the blocked read) runs;
    // every queued one is cancelled all the same.
    expect(aioCancelAll(fifo.fd)).toBe(AioCancelStat.AioNotCanceled);
    expect(b.error()).toBe(ECANCELED);
    expect(c.error()).toBe(ECANCELED);
    expect(w.error()).toBe(ECANCELED);
    expectCanceled(await rejection(pb));
    expectCanceled(await rejection(pc));
    expectCanceled(await rejection(pw), 'aio_write');
    expect(() => c.aioReturn()).toThrow(expect.objectContaining({ code: 'ECANCELED' }));

    // Only the running one is left.
    expect(aioCancelAll(fifo.fd)).toBe(AioCancelStat.AioNotCanceled);
    expect(a.cb.inProgress).toBe(true);
    fifo.release(4);
    await expect(a.p).resolves.toBe(4);
    expect(a.buf.toString()).toBe('****');
    expect(aioCancelAll(fifo.fd)).toBe(AioCancelStat.AioAllDone);
  });

  it('leaves other descriptors alone', async () => {
    const fifo = blockingFifo();
    const a = await runningRead(fifo);
    const queued = AioCb.fromMutSlice(fifo.fd, 0, Buffer.alloc(4));
    const pq = queued.read();
    const { fd } = tempFile(INITIAL);
    const buf = Buffer.alloc(6);
    const other = AioCb.fromMutSlice(fd, 6, buf);
    const po = other.read();
    expect(aioCancelAll(fifo.fd)).toBe(AioCancelStat.AioNotCanceled);
    expectCanceled(await rejection(pq));
    await expect(po).resolves.toBe(6);
    expect(buf.toString()).toBe('123456');
    fifo.release(4);
    await expect(a.p).resolves.toBe(4);
  });

  it('gives AioAllDone when nothing is queued or running', async () => {
    const { fd } = tempFile(INITIAL);
    expect(aioCancelAll(fd)).toBe(AioCancelStat.AioAllDone);
    const buf = Buffer.alloc(4);
    await expect(AioCb.fromMutSlice(fd, 2, buf).read()).resolves.toBe(4);
    expect(buf.toString()).toBe('cdef');
    expect(aioCancelAll(fd)).toBe(AioCancelStat.AioAllDone);
  });

  it('throws AioError EBADF (syscall aio_cancel) for a bad descriptor', () => {
    let err: unknown;
    try {
      aioCancelAll(1_000_000);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AioError);
    expect(err).toMatchObject({ code: 'EBADF', errno: -EBADF, syscall: 'aio_cancel' });
    expect((err as Error).message).toBe('EBADF: bad file descriptor, aio_cancel');
  });

  // AIO_CANCELED needs a descriptor whose requests are all still queued:
  // with glibc limited to one worker thread (aio_init, before the first
  // request, hence a fresh process) and that thread blocked on a FIFO, a read
  // of a regular file waits for a thread and can be cancelled.
  it('returns AioCanceled when every request on the descriptor was still queued', () => {
    const dir = tempDir();
    const script = `
      import { execFileSync } from 'node:child_process';
      import fs from 'node:fs';
      const { AioCb, aioCancelAll, aioInit, AioCancelStat, SigevNone } = await import(${JSON.stringify(distEntryUrl())});
      const dir = ${JSON.stringify(dir)};
      execFileSync('mkfifo', [dir + '/fifo']);
      const fifoFd = fs.openSync(dir + '/fifo', 'r+');
      fs.writeFileSync(dir + '/data', ${JSON.stringify(INITIAL)});
      const fileFd = fs.openSync(dir + '/data', 'r');
      aioInit({ threads: 1, num: 4 });
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const fbuf = Buffer.alloc(2);
      const blocked = AioCb.fromMutSlice(fifoFd, 0, fbuf, 0, SigevNone);
      const pBlocked = blocked.read();
      // Wait until glibc's only thread is blocked reading the FIFO.
      for (;;) {
        const busy = fs.readdirSync('/proc/self/task').some((t) => {
          try { return fs.readFileSync('/proc/self/task/' + t + '/syscall', 'utf8').startsWith('0 0x' + fifoFd.toString(16) + ' '); }
          catch { return false; }
        });
        if (busy) break;
        await sleep(1);
      }
      const buf = Buffer.alloc(4, 0x2e);
      const cb = AioCb.fromMutSlice(fileFd, 2, buf, 0, SigevNone);
      const p = cb.read().then((n) => 'resolved ' + n, (e) => e.code);
      const stat = aioCancelAll(fileFd);
      const out = { stat, canceled: AioCancelStat.AioCanceled, error: cb.error(), result: await p, buf: buf.toString() };
      fs.writeSync(fifoFd, 'ok');
      while (blocked.error() === ${EINPROGRESS}) await sleep(1);
      out.blocked = [await pBlocked, fbuf.toString()];
      console.log(JSON.stringify(out));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      stat: AioCancelStat.AioCanceled,
      canceled: AioCancelStat.AioCanceled,
      error: ECANCELED,
      result: 'ECANCELED',
      buf: '....',
      blocked: [2, 'ok'],
    });
  });
});

describe('AbortSignal', () => {
  it('already aborted: rejects with AbortError, cause === reason, and submits nothing', async () => {
    const { fd, path } = tempFile(INITIAL);
    const ac = new AbortController();
    const reason = new Error('not needed');
    ac.abort(reason);

    const buf = Buffer.alloc(4, 0x2e);
    const r = AioCb.fromMutSlice(fd, 2, buf);
    expectAbortError(await rejection(r.read({ signal: ac.signal })), reason);
    expect(r.inProgress).toBe(false);
    expect(() => r.aioReturn()).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(buf.toString()).toBe('....');

    const w = AioCb.fromSlice(fd, 0, Buffer.from('XXXX'));
    expectAbortError(await rejection(w.write({ signal: ac.signal })), reason);
    expect(w.inProgress).toBe(false);
    expectAbortError(await rejection(AioCb.fromFd(fd).fsync(AioFsyncMode.O_SYNC, { signal: ac.signal })), reason);
    expect(fs.readFileSync(path, 'utf8')).toBe(INITIAL);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);

    // Without a reason the cause is the signal's own DOMException.
    const plain = new AbortController();
    plain.abort();
    const err = await rejection(AioCb.fromMutSlice(fd, 0, buf).read({ signal: plain.signal }));
    expectAbortError(err, plain.signal.reason);
    expect((err as Error).cause).toMatchObject({ name: 'AbortError' });

    // The block is untouched and still usable.
    await expect(r.read()).resolves.toBe(4);
    expect(buf.toString()).toBe('cdef');
  });

  it.each(kinds)('%s: aborted while queued: rejects with AbortError whose cause is the reason', async (_n, sigev) => {
    const fifo = blockingFifo();
    const a = await runningRead(fifo);
    const ac = new AbortController();
    const bbuf = Buffer.alloc(4, 0x2e);
    const b = AioCb.fromMutSlice(fifo.fd, 0, bbuf, 0, sigev);
    const pb = b.read({ signal: ac.signal });
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
    const reason = { why: 'changed my mind' };
    ac.abort(reason);
    expectAbortError(await rejection(pb), reason);
    expect(b.inProgress).toBe(false);
    expect(b.error()).toBe(ECANCELED);
    expect(() => b.aioReturn()).toThrow(expect.objectContaining({ code: 'ECANCELED' }));
    expect(bbuf.toString()).toBe('....');
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);

    fifo.release(4);
    await expect(a.p).resolves.toBe(4);
    expect(a.buf.toString()).toBe('****');
  });

  it('aborted while running: not cancellable, settles with the real result after release', async () => {
    const fifo = blockingFifo();
    const ac = new AbortController();
    const buf = Buffer.alloc(4, 0x2e);
    const cb = AioCb.fromMutSlice(fifo.fd, 0, buf);
    const p = cb.read({ signal: ac.signal });
    await waitUntilReading(fifo.fd);
    ac.abort(new Error('too late'));
    expect(cb.inProgress).toBe(true);
    expect(cb.error()).toBe(EINPROGRESS);
    fifo.release(2);
    await expect(p).resolves.toBe(2);
    expect(buf.toString()).toBe('**..');
    expect(cb.aioReturn()).toBe(2);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('aborted after completion: no effect', async () => {
    const { fd } = tempFile(INITIAL);
    const ac = new AbortController();
    const buf = Buffer.alloc(4);
    const cb = AioCb.fromMutSlice(fd, 2, buf);
    await expect(cb.read({ signal: ac.signal })).resolves.toBe(4);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    ac.abort(new Error('after the fact'));
    expect(cb.inProgress).toBe(false);
    expect(cb.error()).toBe(0);
    expect(cb.aioReturn()).toBe(4);
    expect(buf.toString()).toBe('cdef');
    // A later submission with the aborted signal is refused up front.
    expectAbortError(await rejection(cb.read({ signal: ac.signal })), ac.signal.reason);
  });

  it('one signal reused across 10,000 reads leaves no listener behind', async () => {
    const contents = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7 + 3) & 0xff));
    const { fd } = tempFile(contents);
    const ac = new AbortController();
    const depth = 16;
    setMaxListeners(depth * 2, ac.signal);
    let done = 0;
    let bad = 0;
    for (let start = 0; start < 10_000; start += depth) {
      const batch = Array.from({ length: Math.min(depth, 10_000 - start) }, (_, j) => {
        const i = start + j;
        const off = (i * 61) % 4064;
        const buf = Buffer.alloc(32);
        return AioCb.fromMutSlice(fd, off, buf)
          .read({ signal: ac.signal })
          .then((n) => {
            done++;
            if (n !== 32 || !buf.equals(contents.subarray(off, off + 32))) bad++;
          });
      });
      await Promise.all(batch);
    }
    expect(done).toBe(10_000);
    expect(bad).toBe(0);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('failed operations remove their listener too', async () => {
    const ac = new AbortController();
    for (let i = 0; i < 100; i++) {
      const err = await rejection(AioCb.fromMutSlice(1_000_000, 0, Buffer.alloc(1)).read({ signal: ac.signal }));
      expect(err).toMatchObject({ code: 'EBADF' });
    }
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });
});

describe('the head of a descriptor queue waiting for a libc worker', () => {
  // glibc defect: aio_cancel() of a descriptor's first request while it waits
  // for a worker strands every request queued behind it (they never run).
  // The library never cancels a descriptor's oldest request in progress.
  // With one libc worker held by a FIFO read, the next descriptor's first
  // request is exactly such a head. aioInit must come first, so: a child.
  it.each([
    ['cancel()', 'cb'],
    ['an AbortSignal', 'signal'],
  ])('through %s: not cancelled, and the requests behind it still run', (_name, how) => {
    const dir = tempDir();
    const fifoPath = `${dir}/fifo`;
    spawnSync('mkfifo', [fifoPath]);
    const dataPath = `${dir}/data`;
    fs.writeFileSync(dataPath, 'abcdefgh');
    const script = `
      import fs from 'node:fs';
      const m = await import(${JSON.stringify(distEntryUrl())});
      m.aioInit({ threads: 1, num: 8 });
      const fifo = fs.openSync(${JSON.stringify(fifoPath)}, 'r+');
      const fd = fs.openSync(${JSON.stringify(dataPath)}, 'r');
      const hold = m.AioCb.fromMutSlice(fifo, 0, Buffer.alloc(1)).read();
      // Let the only worker block on the FIFO.
      await new Promise((r) => setTimeout(r, 50));
      const a = Buffer.alloc(4), b = Buffer.alloc(4);
      const ac = new AbortController();
      const first = m.AioCb.fromMutSlice(fd, 0, a);
      const pa = first.read(${how === 'signal' ? '{ signal: ac.signal }' : ''});
      const pb = m.AioCb.fromMutSlice(fd, 4, b).read();
      await new Promise((r) => setImmediate(r));
      const stat = ${how === 'signal' ? '(ac.abort(new Error("stop")), "aborted")' : 'first.cancel()'};
      fs.writeSync(fifo, 'x');
      const timeout = setTimeout(() => { console.log(JSON.stringify({ stranded: true })); process.exit(3); }, 5000);
      const [ra, rb] = await Promise.allSettled([pa, pb]);
      clearTimeout(timeout);
      await hold;
      console.log(JSON.stringify({ stat, ra: ra.status === 'fulfilled' ? ra.value : String(ra.reason), rb: rb.value, a: a.toString(), b: b.toString() }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim());
    expect(out).toEqual({
      stat: how === 'signal' ? 'aborted' : AioCancelStat.AioNotCanceled,
      ra: 4,
      rb: 4,
      a: 'abcd',
      b: 'efgh',
    });
  });
});
