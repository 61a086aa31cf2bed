// lio_listio: nix's test_lio_listio_{wait,nowait} ported, and the glibc
// behaviours of the list call (LIO_NOP and null skipped, EIO in LIO_WAIT,
// EINVAL for a bad mode, the list-level signal) on the file "abcdef123456".
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AioCb,
  AioError,
  aioSuspend,
  LioMode,
  LioOpcode,
  lioListio,
  SigevNone,
  SigevSignal,
  SigevThread,
} from '../src/index.js';
import { expectClean, lastJson, runModule } from './child.js';
import { blockingFifo, distEntryUrl, onCleanup, tempFile, waitUntilReading } from './helpers.js';

const INITIAL = 'abcdef123456';
const { EINPROGRESS, EINVAL, ENOSPC } = osConstants.errno;

// A stray SIGUSR2 with no listener would kill the test process (its default
// action); keep one installed for the whole file.
const ignore = () => {};
beforeAll(() => {
  process.on('SIGUSR2', ignore);
});
afterAll(() => {
  process.off('SIGUSR2', ignore);
});

/** Busy-polls error() as nix's poll_aio does, yielding to the event loop. */
async function pollAio(cb: AioCb): Promise<number> {
  for (;;) {
    const e = cb.error();
    if (e !== EINPROGRESS) return e;
    await new Promise((r) => setImmediate(r));
  }
}

/** `p`, or a rejection naming the hang when it has not settled after `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms);
  });
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

function devFull(): number {
  const fd = fs.openSync('/dev/full', 'w');
  onCleanup(() => fs.closeSync(fd));
  return fd;
}

describe('nix test_lio_listio, ported', () => {
  it('LIO_WAIT: write CDEF at 2 and read 4 bytes at 8 in one list', () => {
    const { fd, path } = tempFile(INITIAL);
    const rbuf = Buffer.alloc(4);
    const wcb = AioCb.fromSlice(fd, 2, Buffer.from('CDEF'), 0, SigevNone, LioOpcode.LIO_WRITE);
    const rcb = AioCb.fromMutSlice(fd, 8, rbuf, 0, SigevNone, LioOpcode.LIO_READ);
    const ps = lioListio(LioMode.LIO_WAIT, [wcb, rcb], SigevNone);
    expect(ps).toHaveLength(2);
    expect(wcb.aioReturn()).toBe(4);
    expect(rcb.aioReturn()).toBe(4);
    expect(rbuf.toString()).toBe('3456');
    expect(fs.readFileSync(path, 'utf8')).toBe('abCDEF123456');
  });

  it('LIO_NOWAIT: write CDEF at 2 and read 4 bytes at 8 in one list', async () => {
    const { fd, path } = tempFile(INITIAL);
    const rbuf = Buffer.alloc(4);
    const wcb = AioCb.fromSlice(fd, 2, Buffer.from('CDEF'), 0, SigevNone, LioOpcode.LIO_WRITE);
    const rcb = AioCb.fromMutSlice(fd, 8, rbuf, 0, SigevNone, LioOpcode.LIO_READ);
    const [pw, pr] = lioListio(LioMode.LIO_NOWAIT, [wcb, rcb], SigevNone);
    expect(await pollAio(wcb)).toBe(0);
    expect(await pollAio(rcb)).toBe(0);
    expect(wcb.aioReturn()).toBe(4);
    expect(rcb.aioReturn()).toBe(4);
    await expect(pw).resolves.toBe(4);
    await expect(pr).resolves.toBe(4);
    expect(rbuf.toString()).toBe('3456');
    expect(fs.readFileSync(path, 'utf8')).toBe('abCDEF123456');
  });

  // Requests on one descriptor run one at a time in list order, so a read
  // listed before a write of the same bytes sees the old contents.
  it.each([
    ['LIO_WAIT', LioMode.LIO_WAIT],
    ['LIO_NOWAIT', LioMode.LIO_NOWAIT],
  ])('%s: read 4 bytes at 2 (cdef) then write CDEF at 2, on one descriptor', async (_name, mode) => {
    const { fd, path } = tempFile(INITIAL);
    const rbuf = Buffer.alloc(4);
    const rcb = AioCb.fromMutSlice(fd, 2, rbuf, 0, SigevThread, LioOpcode.LIO_READ);
    const wcb = AioCb.fromSlice(fd, 2, Buffer.from('CDEF'), 0, SigevThread, LioOpcode.LIO_WRITE);
    const ps = lioListio(mode, [rcb, wcb]);
    await expect(Promise.all(ps)).resolves.toEqual([4, 4]);
    expect(rcb.aioReturn()).toBe(4);
    expect(wcb.aioReturn()).toBe(4);
    expect(rbuf.toString()).toBe('cdef');
    expect(fs.readFileSync(path, 'utf8')).toBe('abCDEF123456');
  });
});

describe('LIO_WAIT', () => {
  it('returns after every entry completed: aioReturn works at once on each', async () => {
    const { fd, path } = tempFile(INITIAL);
    const out = tempFile('');
    const bufs = [0, 3, 6, 9].map(() => Buffer.alloc(3));
    const reads = bufs.map((b, i) =>
      AioCb.fromMutSlice(fd, i * 3, b, 0, i % 2 === 0 ? SigevThread : SigevNone, LioOpcode.LIO_READ),
    );
    const writes = ['AB', 'CD', 'EF'].map((s, i) =>
      AioCb.fromSlice(out.fd, i * 2, Buffer.from(s), 0, SigevThread, LioOpcode.LIO_WRITE),
    );
    const ps = lioListio(LioMode.LIO_WAIT, [...reads, ...writes]);
    // No await between the call and these checks.
    for (const cb of [...reads, ...writes]) {
      expect(cb.inProgress).toBe(false);
      expect(cb.error()).toBe(0);
    }
    expect(reads.map((cb) => cb.aioReturn())).toEqual([3, 3, 3, 3]);
    expect(writes.map((cb) => cb.aioReturn())).toEqual([2, 2, 2]);
    expect(bufs.map((b) => b.toString())).toEqual(['abc', 'def', '123', '456']);
    expect(fs.readFileSync(out.path, 'utf8')).toBe('ABCDEF');
    await expect(Promise.all(ps)).resolves.toEqual([3, 3, 3, 3, 2, 2, 2]);
    expect(fs.readFileSync(path, 'utf8')).toBe(INITIAL);
  });

  it('throws EIO when an entry fails; the failing entry reports ENOSPC and the others still ran', () => {
    const { fd, path } = tempFile(INITIAL);
    const full = devFull();
    const good = AioCb.fromSlice(fd, 2, Buffer.from('CDEF'), 0, SigevThread, LioOpcode.LIO_WRITE);
    const bad = AioCb.fromSlice(full, 0, Buffer.from('xyz'), 0, SigevThread, LioOpcode.LIO_WRITE);
    const rbuf = Buffer.alloc(4);
    const read = AioCb.fromMutSlice(fd, 8, rbuf, 0, SigevNone, LioOpcode.LIO_READ);
    let err: unknown;
    try {
      lioListio(LioMode.LIO_WAIT, [good, bad, read]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AioError);
    expect(err).toMatchObject({ code: 'EIO', errno: -osConstants.errno.EIO, syscall: 'lio_listio' });
    expect((err as Error).message).toBe('EIO: i/o error, lio_listio');

    expect(bad.inProgress).toBe(false);
    expect(bad.error()).toBe(ENOSPC);
    expect(() => bad.aioReturn()).toThrow(expect.objectContaining({ code: 'ENOSPC' }));

    expect(good.error()).toBe(0);
    expect(good.aioReturn()).toBe(4);
    expect(read.aioReturn()).toBe(4);
    expect(rbuf.toString()).toBe('3456');
    expect(fs.readFileSync(path, 'utf8')).toBe('abCDEF123456');
  });
});

describe('LIO_NOWAIT', () => {
  it('a failing entry rejects with its own error; the others resolve', async () => {
    const { fd, path } = tempFile(INITIAL);
    const full = devFull();
    const good = AioCb.fromSlice(fd, 0, Buffer.from('AB'), 0, SigevThread, LioOpcode.LIO_WRITE);
    const bad = AioCb.fromSlice(full, 0, Buffer.from('xyz'), 0, SigevThread, LioOpcode.LIO_WRITE);
    const [pg, pb] = lioListio(LioMode.LIO_NOWAIT, [good, bad]);
    await expect(pg).resolves.toBe(2);
    const err = await (pb as Promise<number>).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AioError);
    expect(err).toMatchObject({ code: 'ENOSPC', syscall: 'aio_write' });
    expect(bad.error()).toBe(ENOSPC);
    expect(fs.readFileSync(path, 'utf8')).toBe('ABcdef123456');
  });

  it('SigevNone entries settle when observed through aioSuspend', async () => {
    const { fd } = tempFile(INITIAL);
    const bufs = [Buffer.alloc(4), Buffer.alloc(4), Buffer.alloc(4)];
    const cbs = bufs.map((b, i) => AioCb.fromMutSlice(fd, i * 4, b, 0, SigevNone, LioOpcode.LIO_READ));
    const ps = lioListio(LioMode.LIO_NOWAIT, cbs);
    const settled = [false, false, false];
    ps.forEach((p, i) => {
      p.then(() => (settled[i] = true));
    });
    while (cbs.some((cb) => cb.inProgress)) {
      await aioSuspend(cbs.filter((cb) => cb.inProgress));
    }
    await expect(Promise.all(ps)).resolves.toEqual([4, 4, 4]);
    expect(settled).toEqual([true, true, true]);
    expect(bufs.map((b) => b.toString())).toEqual(['abcd', 'ef12', '3456']);
    expect(cbs.map((cb) => cb.aioReturn())).toEqual([4, 4, 4]);
  });

  it('fires the list-level SigevSignal once, after every entry completed', async () => {
    const { fd, path } = tempFile(INITIAL);
    const rbuf = Buffer.alloc(6);
    const rcb = AioCb.fromMutSlice(fd, 6, rbuf, 0, SigevNone, LioOpcode.LIO_READ);
    const wcb = AioCb.fromSlice(fd, 0, Buffer.from('AB'), 0, SigevNone, LioOpcode.LIO_WRITE);
    let count = 0;
    let statusAtSignal: number[] = [];
    const first = new Promise<void>((resolve) => {
      process.once('SIGUSR2', () => {
        statusAtSignal = [rcb.error(), wcb.error()];
        resolve();
      });
    });
    const counter = () => count++;
    process.on('SIGUSR2', counter);
    try {
      const ps = lioListio(LioMode.LIO_NOWAIT, [rcb, wcb], SigevSignal('SIGUSR2'));
      await first;
      // Both entries had completed when the signal arrived.
      expect(statusAtSignal).toEqual([0, 0]);
      await expect(Promise.all(ps)).resolves.toEqual([6, 2]);
      // Give a second (wrong) signal the time to arrive.
      await new Promise((r) => setTimeout(r, 100));
      expect(count).toBe(1);
    } finally {
      process.off('SIGUSR2', counter);
    }
    expect(rbuf.toString()).toBe('123456');
    expect(fs.readFileSync(path, 'utf8')).toBe('ABcdef123456');
  });

  it("fires each entry's own SigevSignal as well as the list's", async () => {
    const { fd } = tempFile(INITIAL);
    const rbuf = Buffer.alloc(3);
    const rcb = AioCb.fromMutSlice(fd, 3, rbuf, 0, SigevSignal('SIGWINCH'), LioOpcode.LIO_READ);
    const entry = new Promise<void>((resolve) => process.once('SIGWINCH', () => resolve()));
    const list = new Promise<void>((resolve) => process.once('SIGUSR2', () => resolve()));
    const [p] = lioListio(LioMode.LIO_NOWAIT, [rcb], SigevSignal('SIGUSR2'));
    await Promise.all([entry, list]);
    expect(rcb.error()).toBe(0);
    await expect(p).resolves.toBe(3);
    expect(rbuf.toString()).toBe('def');
  });

  it('with nothing to submit still fires the list-level signal at once', async () => {
    const { fd } = tempFile(INITIAL);
    const nop = AioCb.fromMutSlice(fd, 0, Buffer.alloc(1), 0, SigevNone, LioOpcode.LIO_NOP);
    const got = new Promise<void>((resolve) => process.once('SIGUSR2', () => resolve()));
    const ps = lioListio(LioMode.LIO_NOWAIT, [null, nop], SigevSignal('SIGUSR2'));
    await got;
    await expect(Promise.all(ps)).resolves.toEqual([0, 0]);
  });
});

describe('list entries', () => {
  it.each([
    ['LIO_WAIT', LioMode.LIO_WAIT],
    ['LIO_NOWAIT', LioMode.LIO_NOWAIT],
  ])('%s: null and LIO_NOP entries resolve to 0 and are skipped', async (_name, mode) => {
    const { fd, path } = tempFile(INITIAL);
    const nopRead = Buffer.alloc(4, 0x2e);
    const nopR = AioCb.fromMutSlice(fd, 0, nopRead, 0, SigevThread, LioOpcode.LIO_NOP);
    const nopW = AioCb.fromSlice(fd, 0, Buffer.from('ZZZZ'), 0, SigevNone);
    const wbuf = Buffer.from('CDEF');
    const wcb = AioCb.fromSlice(fd, 2, wbuf, 0, SigevThread, LioOpcode.LIO_WRITE);
    const ps = lioListio(mode, [null, nopR, wcb, nopW, null]);
    expect(ps).toHaveLength(5);
    await expect(Promise.all(ps)).resolves.toEqual([0, 0, 4, 0, 0]);
    expect(nopR.inProgress).toBe(false);
    expect(nopW.inProgress).toBe(false);
    // Never submitted: there is no result to return.
    expect(() => nopR.aioReturn()).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => nopW.aioReturn()).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(nopRead.toString()).toBe('....');
    expect(fs.readFileSync(path, 'utf8')).toBe('abCDEF123456');
  });

  it('an empty list returns no promises', () => {
    expect(lioListio(LioMode.LIO_WAIT, [])).toEqual([]);
    expect(lioListio(LioMode.LIO_NOWAIT, [])).toEqual([]);
  });

  // glibc's aio_read()/aio_write() overwrite aio_lio_opcode; the block was
  // made with LIO_NOP and must still be skipped in a list.
  it.each([
    ['LIO_NOWAIT', LioMode.LIO_NOWAIT],
    ['LIO_WAIT', LioMode.LIO_WAIT],
  ])('%s: a LIO_NOP block stays skipped after it was used with read() and write()', async (_name, mode) => {
    const { fd, path } = tempFile(INITIAL);
    const buf = Buffer.alloc(4);
    const cb = AioCb.fromMutSlice(fd, 2, buf); // opcode LIO_NOP by default
    await expect(cb.read()).resolves.toBe(4);
    expect(buf.toString()).toBe('cdef');
    buf.write('WXYZ');
    await expect(cb.write()).resolves.toBe(4);
    expect(fs.readFileSync(path, 'utf8')).toBe('abWXYZ123456');

    buf.write('....');
    const [p] = lioListio(mode, [cb]);
    // Bounded so that a promise that never settles fails here, not by timeout.
    await expect(within(p as Promise<number>, 2000)).resolves.toBe(0);
    expect(cb.inProgress).toBe(false);
    expect(buf.toString()).toBe('....');
    expect(fs.readFileSync(path, 'utf8')).toBe('abWXYZ123456');
  });

  it('lioListio performs the opcode the block was made with, whatever read() or write() did before', async () => {
    const { fd, path } = tempFile(INITIAL);
    const buf = Buffer.from('WXYZ');
    const cb = AioCb.fromMutSlice(fd, 2, buf, 0, SigevThread, LioOpcode.LIO_READ);
    await expect(cb.write()).resolves.toBe(4);
    expect(fs.readFileSync(path, 'utf8')).toBe('abWXYZ123456');
    buf.write('....');
    await expect(within(lioListio(LioMode.LIO_NOWAIT, [cb])[0] as Promise<number>, 2000)).resolves.toBe(4);
    expect(buf.toString()).toBe('WXYZ');
    expect(cb.lioOpcode).toBe(LioOpcode.LIO_READ);
    expect(fs.readFileSync(path, 'utf8')).toBe('abWXYZ123456');
  });

  it('a block may go through lioListio again once completed', async () => {
    const { fd } = tempFile(INITIAL);
    const buf = Buffer.alloc(2);
    const cb = AioCb.fromMutSlice(fd, 4, buf, 0, SigevThread, LioOpcode.LIO_READ);
    await expect(lioListio(LioMode.LIO_NOWAIT, [cb])[0]).resolves.toBe(2);
    expect(buf.toString()).toBe('ef');
    buf.fill(0);
    const [p] = lioListio(LioMode.LIO_WAIT, [cb]);
    expect(cb.aioReturn()).toBe(2);
    await expect(p).resolves.toBe(2);
    expect(buf.toString()).toBe('ef');
    expect(cb.lioOpcode).toBe(LioOpcode.LIO_READ);
  });

  it('the same block twice in the list is a TypeError and nothing is submitted', () => {
    const { fd, path } = tempFile(INITIAL);
    const other = AioCb.fromSlice(fd, 0, Buffer.from('QQ'), 0, SigevNone, LioOpcode.LIO_WRITE);
    const cb = AioCb.fromSlice(fd, 2, Buffer.from('CDEF'), 0, SigevNone, LioOpcode.LIO_WRITE);
    expect(() => lioListio(LioMode.LIO_WAIT, [other, cb, null, cb])).toThrow(TypeError);
    expect(other.inProgress).toBe(false);
    expect(cb.inProgress).toBe(false);
    expect(fs.readFileSync(path, 'utf8')).toBe(INITIAL);
  });

  it('an entry already in progress makes the call throw ERR_AIO_IN_PROGRESS and submits nothing else', async () => {
    const { fd, path } = tempFile(INITIAL);
    const fifo = blockingFifo();
    const fbuf = Buffer.alloc(3);
    const running = AioCb.fromMutSlice(fifo.fd, 0, fbuf, 0, SigevThread, LioOpcode.LIO_READ);
    const pr = running.read();
    await waitUntilReading(fifo.fd);
    expect(running.inProgress).toBe(true);

    const fresh = AioCb.fromSlice(fd, 0, Buffer.from('ZZ'), 0, SigevThread, LioOpcode.LIO_WRITE);
    for (const mode of [LioMode.LIO_NOWAIT, LioMode.LIO_WAIT]) {
      let err: unknown;
      try {
        lioListio(mode, [fresh, running]);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(Error);
      expect(err).toMatchObject({ code: 'ERR_AIO_IN_PROGRESS' });
      expect(fresh.inProgress).toBe(false);
      expect(() => fresh.aioReturn()).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
    expect(fs.readFileSync(path, 'utf8')).toBe(INITIAL);
    // The running operation was left alone.
    expect(running.inProgress).toBe(true);
    expect(running.error()).toBe(EINPROGRESS);

    fifo.release(3);
    await expect(pr).resolves.toBe(3);
    expect(fbuf.toString()).toBe('***');
    // The refused block still works.
    await expect(lioListio(LioMode.LIO_NOWAIT, [fresh])[0]).resolves.toBe(2);
    expect(fs.readFileSync(path, 'utf8')).toBe('ZZcdef123456');
  });
});

describe('mode', () => {
  it('an invalid mode is AioError EINVAL, syscall lio_listio, and submits nothing', () => {
    const { fd, path } = tempFile(INITIAL);
    const cb = AioCb.fromSlice(fd, 0, Buffer.from('ZZ'), 0, SigevNone, LioOpcode.LIO_WRITE);
    for (const mode of [99, -1, 2.5]) {
      let err: unknown;
      try {
        lioListio(mode as LioMode, [cb]);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AioError);
      expect(err).toMatchObject({ code: 'EINVAL', errno: -EINVAL, syscall: 'lio_listio' });
    }
    expect(cb.inProgress).toBe(false);
    expect(fs.readFileSync(path, 'utf8')).toBe(INITIAL);
  });

  it.each([['1'], [null], [undefined], [1n], [{}]])('a non-number mode (%s) is a TypeError', (mode) => {
    const { fd } = tempFile(INITIAL);
    const cb = AioCb.fromSlice(fd, 0, Buffer.from('ZZ'), 0, SigevNone, LioOpcode.LIO_WRITE);
    expect(() => lioListio(mode as never, [cb])).toThrow(TypeError);
    expect(() => lioListio(mode as never, [cb])).toThrow(/mode/);
    expect(cb.inProgress).toBe(false);
  });
});

describe('promises made by the native call', () => {
  // lioListio's promises come from napi_create_promise. A block collected
  // before anyone observed its operation leaves its promise pending for
  // ever (as a JavaScript promise would stay), never rejected: no warning,
  // no crash, and the writes still land (a dropped write is not lost).
  it('SigevNone entries dropped and collected: writes land, promises stay pending, no warning', () => {
    const { path } = tempFile(Buffer.alloc(4096));
    const r = runModule(
      distEntryUrl(),
      `
      const fd = fs.openSync(${JSON.stringify(path)}, 'r+');
      const fr = new FinalizationRegistry(() => { collected++; });
      let collected = 0;
      const ps = (() => {
        const cbs = [];
        for (let i = 0; i < 512; i++) {
          const cb = m.AioCb.fromSlice(fd, i * 8, Buffer.from(String(i).padStart(8, '.')), 0, m.SigevNone, m.LioOpcode.LIO_WRITE);
          fr.register(cb, i);
          cbs.push(cb);
        }
        return m.lioListio(m.LioMode.LIO_NOWAIT, cbs);
      })();
      let settled = 0;
      for (const p of ps) p.then(() => settled++, () => settled++);
      for (let i = 0; i < 20 && collected < 512; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 10));
      }
      await new Promise((r) => setTimeout(r, 50));
      console.log(JSON.stringify({ collected, settled }));
    `,
      { timeoutMs: 30_000, nodeArgs: ['--expose-gc'] },
    );
    expectClean(r);
    expect(lastJson<{ collected: number; settled: number }>(r)).toEqual({ collected: 512, settled: 0 });
    const text = fs.readFileSync(path, 'utf8');
    for (let i = 0; i < 512; i++) expect(text.slice(i * 8, i * 8 + 8)).toBe(String(i).padStart(8, '.'));
  });
});
