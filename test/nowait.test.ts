// The page-cache fast path: core/nowait (preadv2 RWF_NOWAIT, posix_fadvise,
// F_GETFL) and the policy in api/nowait (limits, fallbacks, ordering, stats).
// Correctness only; speed is the benchmark's job.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os, { constants as osConstants } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { adviceValue, adviseFd } from '../src/api/advise.js';
import {
  createNowaitState,
  mutationSettled,
  mutationStarted,
  noteAio,
  nowaitInternals,
  readThrough,
  setNowaitLimits,
  stats,
  tryReadInline,
} from '../src/api/nowait.js';
import { O_DIRECT } from '../src/core/constants.js';
import { FadviseAdvice, fdFlags, HAVE_RWF_NOWAIT, posixFadvise, preadNowait } from '../src/core/nowait.js';
import { AioCb, AioError } from '../src/index.js';
import { blockingFifo, onCleanup, tempDir } from './helpers.js';

const { EAGAIN, EOPNOTSUPP, ENOSYS, EBADF, ESPIPE } = osConstants.errno;
const PAGE = 4096;

afterEach(() => {
  nowaitInternals.setPread(undefined);
  setNowaitLimits();
  nowaitInternals.resetTurn();
});

/** A file of `size` random bytes, flushed (so its pages are clean and can be dropped), open read-write. */
function dataFile(size: number): { fd: number; path: string; data: Buffer } {
  const p = path.join(tempDir(), 'data');
  const data = randomBytes(size);
  fs.writeFileSync(p, data);
  const fd = fs.openSync(p, 'r+');
  fs.fsyncSync(fd);
  onCleanup(() => fs.closeSync(fd));
  return { fd, path: p, data };
}

/**
 * DONTNEED twice, 5 ms apart: it is best effort, and a page still in a
 * per-CPU LRU batch can survive one call.
 */
function dontneed(fd: number): void {
  posixFadvise(fd, 0, 0, FadviseAdvice.POSIX_FADV_DONTNEED);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
  posixFadvise(fd, 0, 0, FadviseAdvice.POSIX_FADV_DONTNEED);
}

/** Drops the file's pages; true when the file system honours it (tmpfs keeps them). */
function dropPages(fd: number): boolean {
  dontneed(fd);
  return preadNowait(fd, Buffer.alloc(PAGE), 0) === -EAGAIN;
}

// Whether this machine's temporary directory can show a page-cache miss: the
// addon must have RWF_NOWAIT and the file system must drop clean pages on
// POSIX_FADV_DONTNEED (ext4, xfs, btrfs do; tmpfs does not).
const canMiss = (() => {
  if (!HAVE_RWF_NOWAIT) return false;
  const p = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'posix-aio-probe-')), 'probe');
  fs.writeFileSync(p, Buffer.alloc(4 * PAGE, 1));
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
    return dropPages(fd);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(path.dirname(p), { recursive: true, force: true });
  }
})();

/** An AIO read of `buffer[offset, offset + length)` at `position`, as AioFile's would be. */
function aioRead(fd: number, buffer: Buffer) {
  return (offset: number, length: number, position: number | bigint) =>
    AioCb.fromMutSlice(fd, position, buffer.subarray(offset, offset + length)).read();
}

/** Counts calls of the inline read while passing them through. */
function countPreads(): { calls: number } {
  const c = { calls: 0 };
  nowaitInternals.setPread((fd, view, position, offset, length) => {
    c.calls++;
    return preadNowait(fd, view, position, offset, length);
  });
  return c;
}

describe('preadNowait (core)', () => {
  it.skipIf(!HAVE_RWF_NOWAIT)(
    'copies cached bytes inline, at an offset inside the view and at a bigint position',
    () => {
      const { fd, data } = dataFile(8 * PAGE);
      const buf = Buffer.alloc(3 * PAGE, 0xee);
      expect(preadNowait(fd, buf, PAGE, 100, 2 * PAGE)).toBe(2 * PAGE);
      expect(buf.subarray(100, 100 + 2 * PAGE).equals(data.subarray(PAGE, 3 * PAGE))).toBe(true);
      expect(buf.subarray(0, 100).equals(Buffer.alloc(100, 0xee))).toBe(true);
      expect(buf.subarray(100 + 2 * PAGE).equals(Buffer.alloc(PAGE - 100, 0xee))).toBe(true);
      const view = new DataView(new ArrayBuffer(PAGE));
      expect(preadNowait(fd, view, 5n * BigInt(PAGE))).toBe(PAGE);
      expect(Buffer.from(view.buffer).equals(data.subarray(5 * PAGE, 6 * PAGE))).toBe(true);
    },
  );

  it.skipIf(!HAVE_RWF_NOWAIT)('returns a short count at end of file and 0 past it', () => {
    const { fd, data } = dataFile(PAGE + 10);
    const buf = Buffer.alloc(PAGE);
    expect(preadNowait(fd, buf, PAGE)).toBe(10);
    expect(buf.subarray(0, 10).equals(data.subarray(PAGE))).toBe(true);
    expect(preadNowait(fd, buf, 10 * PAGE)).toBe(0);
  });

  // Needs a file system that drops clean pages on DONTNEED (see canMiss).
  it.skipIf(!canMiss)('reports EAGAIN without blocking once the pages are dropped', () => {
    const { fd } = dataFile(64 * PAGE);
    // DONTNEED is best effort: a page still in a per-CPU LRU batch can
    // survive one call (seen once in CI), and is then read whole. Drop again
    // until the page is gone; every attempt must return at once.
    let r = 0;
    for (let attempt = 0; attempt < 5 && r !== -EAGAIN; attempt++) {
      posixFadvise(fd, 0, 0, FadviseAdvice.POSIX_FADV_DONTNEED);
      const buf = Buffer.alloc(PAGE, 0xee);
      const t0 = process.hrtime.bigint();
      r = preadNowait(fd, buf, 40 * PAGE);
      // Generous: a device read would also be fast on an idle SSD, so the
      // bound only rules out a stall; the bytes untouched rule out a read.
      expect(Number(process.hrtime.bigint() - t0) / 1e6).toBeLessThan(1000);
      if (r === -EAGAIN) expect(buf.equals(Buffer.alloc(PAGE, 0xee))).toBe(true);
      else expect(r).toBe(PAGE);
    }
    expect(r).toBe(-EAGAIN);
  });

  it('checks its arguments natively', () => {
    const { fd } = dataFile(PAGE);
    expect(() => preadNowait(fd, Buffer.alloc(4), 0, 2, 3)).toThrow(RangeError);
    expect(() => preadNowait(fd, {} as unknown as Buffer, 0, 0, 0)).toThrow(TypeError);
    expect(() => preadNowait(fd, Buffer.alloc(4), -1, 0, 4)).toThrow(RangeError);
  });

  it('reports a bad descriptor as -EBADF, or -ENOSYS when built without RWF_NOWAIT', () => {
    const { fd } = dataFile(PAGE);
    const bad = fs.openSync(path.join(tempDir(), 'gone'), 'w');
    fs.closeSync(bad);
    expect(preadNowait(bad, Buffer.alloc(4), 0)).toBe(HAVE_RWF_NOWAIT ? -EBADF : -ENOSYS);
    // Node has no O_ACCMODE; on Linux the access mode is these two bits.
    expect(fdFlags(fd) & (fs.constants.O_WRONLY | fs.constants.O_RDWR)).toBe(fs.constants.O_RDWR);
    expect(() => fdFlags(bad)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'fcntl' }));
  });
});

describe('advise', () => {
  it.each([
    ['normal', FadviseAdvice.POSIX_FADV_NORMAL],
    ['sequential', FadviseAdvice.POSIX_FADV_SEQUENTIAL],
    ['random', FadviseAdvice.POSIX_FADV_RANDOM],
    ['willneed', FadviseAdvice.POSIX_FADV_WILLNEED],
    ['dontneed', FadviseAdvice.POSIX_FADV_DONTNEED],
    ['noreuse', FadviseAdvice.POSIX_FADV_NOREUSE],
  ] as const)('maps %s to its POSIX_FADV_ value and applies it', (name, value) => {
    expect(adviceValue(name)).toBe(value);
    const { fd } = dataFile(4 * PAGE);
    expect(adviseFd(fd, 0, 0, name)).toBeUndefined();
    expect(adviseFd(fd, PAGE, 2n * BigInt(PAGE), name)).toBeUndefined();
  });

  it.each([['Normal'], ['toString'], [''], [3], [undefined], [null]])('rejects advice %j with a TypeError', (bad) => {
    const { fd } = dataFile(PAGE);
    expect(() => adviseFd(fd, 0, 0, bad as never)).toThrow(TypeError);
    expect(() => adviseFd(fd, 0, 0, bad as never)).toThrow(/advice must be one of 'normal'/);
  });

  it.each([
    [-1, 0, RangeError],
    [0, -1, RangeError],
    [0.5, 0, RangeError],
    ['0', 0, TypeError],
  ])('rejects offset %j, length %j', (offset, length, type) => {
    const { fd } = dataFile(PAGE);
    expect(() => adviseFd(fd, offset as number, length as number, 'normal')).toThrow(type);
  });

  it('reports ESPIPE on a FIFO and EBADF on a closed descriptor, fs-shaped', () => {
    const { fd } = blockingFifo();
    const err = (() => {
      try {
        adviseFd(fd, 0, 0, 'willneed');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(AioError);
    expect(err).toMatchObject({ code: 'ESPIPE', errno: -ESPIPE, syscall: 'posix_fadvise' });
    const bad = fs.openSync(path.join(tempDir(), 'gone'), 'w');
    fs.closeSync(bad);
    expect(() => adviseFd(bad, 0, 0, 'normal')).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it.skipIf(!canMiss)("'dontneed' makes the next inline read miss; 'willneed' brings the pages back", async () => {
    const { fd, data } = dataFile(16 * PAGE);
    adviseFd(fd, 0, 0, 'dontneed');
    dontneed(fd);
    const buf = Buffer.alloc(PAGE);
    expect(preadNowait(fd, buf, 3 * PAGE)).toBe(-EAGAIN);
    adviseFd(fd, 0, 0, 'willneed');
    // WILLNEED starts the reads; wait for them.
    for (let i = 0; i < 200 && preadNowait(fd, buf, 3 * PAGE) === -EAGAIN; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(preadNowait(fd, buf, 3 * PAGE)).toBe(PAGE);
    expect(buf.equals(data.subarray(3 * PAGE, 4 * PAGE))).toBe(true);
  });
});

describe('tryReadInline / readThrough (policy)', () => {
  it.skipIf(!HAVE_RWF_NOWAIT)('serves a cached read inline, byte for byte, and counts it', async () => {
    const { fd, data } = dataFile(16 * PAGE);
    const state = createNowaitState(fd);
    expect(state.disabled).toBeUndefined();
    const buf = Buffer.alloc(2 * PAGE);
    const r = tryReadInline(state, fd, buf, 0, 2 * PAGE, 3 * PAGE);
    expect(r).toEqual({ bytesRead: 2 * PAGE, done: true });
    expect(buf.equals(data.subarray(3 * PAGE, 5 * PAGE))).toBe(true);
    // readThrough returns a plain number when nothing went through AIO.
    const buf2 = Buffer.alloc(PAGE);
    const n = readThrough(state, fd, buf2, 0, PAGE, 7n * BigInt(PAGE), () => Promise.reject(new Error('AIO was used')));
    expect(n).toBe(PAGE);
    expect(buf2.equals(data.subarray(7 * PAGE, 8 * PAGE))).toBe(true);
    expect(stats(state)).toEqual({
      inlineHits: 2,
      inlinePartial: 0,
      inlineBytes: 3 * PAGE,
      misses: 0,
      skipped: 0,
      aioSubmissions: 0,
      disabled: undefined,
    });
  });

  it.skipIf(!HAVE_RWF_NOWAIT)('a cached read across end of file is one complete short read', () => {
    const { fd, data } = dataFile(2 * PAGE + 100);
    const state = createNowaitState(fd);
    const buf = Buffer.alloc(4 * PAGE);
    expect(tryReadInline(state, fd, buf, 0, 4 * PAGE, PAGE)).toEqual({ bytesRead: PAGE + 100, done: true });
    expect(buf.subarray(0, PAGE + 100).equals(data.subarray(PAGE))).toBe(true);
    expect(tryReadInline(state, fd, buf, 0, PAGE, 10 * PAGE)).toEqual({ bytesRead: 0, done: true });
  });

  it.skipIf(!canMiss)('a miss goes through AIO with every byte, and counts as a miss and a submission', async () => {
    const { fd, data } = dataFile(64 * PAGE);
    const state = createNowaitState(fd);
    dontneed(fd);
    const buf = Buffer.alloc(PAGE);
    const p = readThrough(state, fd, buf, 0, PAGE, 50 * PAGE, aioRead(fd, buf));
    expect(p).toBeInstanceOf(Promise);
    await expect(p).resolves.toBe(PAGE);
    expect(buf.equals(data.subarray(50 * PAGE, 51 * PAGE))).toBe(true);
    expect(stats(state)).toMatchObject({ inlineHits: 0, misses: 1, aioSubmissions: 1 });
  });

  it.skipIf(!canMiss)(
    'a partially cached range: the cached head inline, the rest through AIO, every byte',
    async () => {
      // Each round uses fresh, never-touched regions: an inline miss starts
      // read-ahead, and pages under I/O are not dropped by DONTNEED.
      for (let round = 0; round < 5; round++) {
        const { fd, data } = dataFile(64 * PAGE);
        posixFadvise(fd, 0, 0, FadviseAdvice.POSIX_FADV_DONTNEED);
        // No read-ahead on this descriptor, so exactly the pages read below are cached.
        posixFadvise(fd, 0, 0, FadviseAdvice.POSIX_FADV_RANDOM);
        fs.readSync(fd, Buffer.alloc(2 * PAGE), 0, 2 * PAGE, 8 * PAGE);
        fs.readSync(fd, Buffer.alloc(2 * PAGE), 0, 2 * PAGE, 40 * PAGE);
        const state = createNowaitState(fd);
        const probe = Buffer.alloc(16 * PAGE);
        const head = tryReadInline(state, fd, probe, 0, 16 * PAGE, 8 * PAGE);
        if (head === undefined || head.done) continue; // reclaimed, or read-ahead won: try again
        expect(head.bytesRead % PAGE).toBe(0);
        expect(head.bytesRead).toBeGreaterThanOrEqual(2 * PAGE);
        expect(probe.subarray(0, head.bytesRead).equals(data.subarray(8 * PAGE, 8 * PAGE + head.bytesRead))).toBe(true);

        const buf = Buffer.alloc(16 * PAGE + 7, 0xee);
        const calls: [number, number, number | bigint][] = [];
        const aio = aioRead(fd, buf);
        const n = await readThrough(state, fd, buf, 7, 16 * PAGE, 40 * PAGE, (o, l, p) => {
          calls.push([o, l, p]);
          return aio(o, l, p);
        });
        expect(n).toBe(16 * PAGE);
        expect(buf.subarray(7).equals(data.subarray(40 * PAGE, 56 * PAGE))).toBe(true);
        expect(buf.subarray(0, 7).equals(Buffer.alloc(7, 0xee))).toBe(true);
        if (calls.length === 0) continue; // the region was cached after all: try again
        expect(calls).toHaveLength(1);
        const [o, l, p] = calls[0] as [number, number, number];
        // The AIO part starts where the inline copy stopped and ends at the range's end.
        expect(o - 7).toBe(p - 40 * PAGE);
        expect(o - 7).toBeGreaterThanOrEqual(2 * PAGE);
        expect(o - 7 + l).toBe(16 * PAGE);
        expect(stats(state)).toMatchObject({ inlinePartial: 2, aioSubmissions: 1 });
        return;
      }
      throw new Error('no round saw a partially cached range');
    },
  );

  it('a partial copy followed by an error continues through AIO from where it stopped (seam)', async () => {
    const { fd, data } = dataFile(8 * PAGE);
    const state = createNowaitState(fd);
    let call = 0;
    // First call: one page, then EAGAIN (the rest not cached).
    nowaitInternals.setPread((f, view, position, offset, length) => {
      if (call++ === 0) return preadNowait(f, view, position, offset, Math.min(length, PAGE));
      return -EAGAIN;
    });
    const buf = Buffer.alloc(4 * PAGE);
    const n = await readThrough(state, fd, buf, 0, 4 * PAGE, 2 * PAGE, aioRead(fd, buf));
    expect(n).toBe(4 * PAGE);
    expect(buf.equals(data.subarray(2 * PAGE, 6 * PAGE))).toBe(true);
    expect(stats(state)).toMatchObject({ inlinePartial: 1, inlineBytes: PAGE, aioSubmissions: 1, misses: 0 });
  });

  it.each([
    ['EOPNOTSUPP', -EOPNOTSUPP],
    ['ENOSYS', -ENOSYS],
    ['ESPIPE', -ESPIPE],
  ])('%s turns the fast path off for that file only; the read goes through AIO', async (name, errno) => {
    const a = dataFile(4 * PAGE);
    const b = dataFile(4 * PAGE);
    const sa = createNowaitState(a.fd);
    const sb = createNowaitState(b.fd);
    let calls = 0;
    nowaitInternals.setPread((fd, view, position, offset, length) => {
      calls++;
      return fd === a.fd ? errno : preadNowait(fd, view, position, offset, length);
    });
    const buf = Buffer.alloc(PAGE);
    for (let i = 0; i < 3; i++) {
      buf.fill(0);
      await expect(readThrough(sa, a.fd, buf, 0, PAGE, PAGE, aioRead(a.fd, buf))).resolves.toBe(PAGE);
      expect(buf.equals(a.data.subarray(PAGE, 2 * PAGE))).toBe(true);
    }
    expect(calls).toBe(1);
    expect(stats(sa)).toMatchObject({ misses: 1, aioSubmissions: 3, inlineHits: 0 });
    expect(stats(sa).disabled).toMatch(new RegExp(`^${name}`));
    // The other file keeps it (when the platform has it at all).
    const other = tryReadInline(sb, b.fd, buf, 0, PAGE, 0);
    if (HAVE_RWF_NOWAIT) {
      expect(other).toEqual({ bytesRead: PAGE, done: true });
      expect(buf.equals(b.data.subarray(0, PAGE))).toBe(true);
    } else expect(other).toBeUndefined();
  });

  it('another error is a miss for that read only: AIO reports its own error', async () => {
    const { fd } = dataFile(PAGE);
    const state = createNowaitState(fd);
    nowaitInternals.setPread(() => -EBADF);
    const buf = Buffer.alloc(PAGE);
    const aioSaw: number[] = [];
    await expect(
      readThrough(state, fd, buf, 0, PAGE, 0, (offset, l) => {
        aioSaw.push(offset);
        aioSaw.push(l);
        return Promise.reject(new AioError(EBADF, 'aio_read'));
      }),
    ).rejects.toMatchObject({ code: 'EBADF', syscall: 'aio_read' });
    expect(aioSaw).toEqual([0, PAGE]);
    expect(stats(state)).toMatchObject({ misses: 1, disabled: undefined });
  });

  it('nowait: false never takes it, per file or per call', async () => {
    const { fd, data } = dataFile(4 * PAGE);
    const c = countPreads();
    const off = createNowaitState(fd, { nowait: false });
    expect(off.disabled).toBe('nowait: false');
    const on = createNowaitState(fd);
    const buf = Buffer.alloc(PAGE);
    await expect(readThrough(off, fd, buf, 0, PAGE, 0, aioRead(fd, buf))).resolves.toBe(PAGE);
    expect(buf.equals(data.subarray(0, PAGE))).toBe(true);
    expect(tryReadInline(off, fd, buf, 0, PAGE, 0)).toBeUndefined();
    await expect(readThrough(on, fd, buf, 0, PAGE, PAGE, aioRead(fd, buf), false)).resolves.toBe(PAGE);
    expect(buf.equals(data.subarray(PAGE, 2 * PAGE))).toBe(true);
    expect(c.calls).toBe(0);
    expect(stats(off)).toMatchObject({ aioSubmissions: 1, inlineHits: 0, misses: 0, skipped: 0 });
    expect(stats(on)).toMatchObject({ aioSubmissions: 1, inlineHits: 0, misses: 0, skipped: 0 });
    expect(() => createNowaitState(fd, { nowait: 1 as never })).toThrow(TypeError);
  });

  it('O_DIRECT descriptors never take it: the option, or the flag found on the descriptor', async () => {
    const { fd, path: p } = dataFile(4 * PAGE);
    const c = countPreads();
    const byOption = createNowaitState(fd, { direct: true });
    expect(byOption.disabled).toBe('O_DIRECT');
    expect(tryReadInline(byOption, fd, Buffer.alloc(PAGE), 0, PAGE, 0)).toBeUndefined();
    let direct: number | undefined;
    try {
      if (O_DIRECT !== undefined) direct = fs.openSync(p, fs.constants.O_RDONLY | O_DIRECT);
    } catch {
      // This file system refuses O_DIRECT (tmpfs): only the option case applies.
    }
    if (direct !== undefined) {
      const d = direct;
      onCleanup(() => fs.closeSync(d));
      const found = createNowaitState(direct);
      expect(found.disabled).toBe('O_DIRECT');
      expect(tryReadInline(found, direct, Buffer.alloc(PAGE), 0, PAGE, 0)).toBeUndefined();
    }
    expect(c.calls).toBe(0);
  });

  it('past the per-call cap, reads go through AIO', () => {
    const { fd } = dataFile(16 * PAGE);
    const c = countPreads();
    setNowaitLimits({ callBytes: 2 * PAGE });
    const state = createNowaitState(fd);
    expect(tryReadInline(state, fd, Buffer.alloc(3 * PAGE), 0, 3 * PAGE, 0)).toBeUndefined();
    expect(c.calls).toBe(0);
    expect(stats(state)).toMatchObject({ skipped: 1 });
    const small = tryReadInline(state, fd, Buffer.alloc(2 * PAGE), 0, 2 * PAGE, 0);
    expect(small === undefined ? c.calls : small.bytesRead).toBe(HAVE_RWF_NOWAIT ? 2 * PAGE : 0);
  });

  it.skipIf(!HAVE_RWF_NOWAIT)('past the turn budget, reads go through AIO until the loop turns', async () => {
    const { fd, data } = dataFile(16 * PAGE);
    // Budget for exactly 3 reads of 4 KiB: 3 * (1000 + 4096 * 0.5) ns.
    setNowaitLimits({ turnBudgetNs: 3 * (1000 + PAGE * 0.5), callCostNs: 1000, byteCostNs: 0.5 });
    nowaitInternals.resetTurn();
    const a = createNowaitState(fd);
    const b = createNowaitState(fd);
    const buf = Buffer.alloc(PAGE);
    // The budget is process-wide: two files share it.
    expect(tryReadInline(a, fd, buf, 0, PAGE, 0)?.done).toBe(true);
    expect(tryReadInline(b, fd, buf, 0, PAGE, PAGE)?.done).toBe(true);
    expect(tryReadInline(a, fd, buf, 0, PAGE, 2 * PAGE)?.done).toBe(true);
    expect(buf.equals(data.subarray(2 * PAGE, 3 * PAGE))).toBe(true);
    expect(tryReadInline(b, fd, buf, 0, PAGE, 3 * PAGE)).toBeUndefined();
    await expect(readThrough(a, fd, buf, 0, PAGE, 4 * PAGE, aioRead(fd, buf))).resolves.toBe(PAGE);
    expect(buf.equals(data.subarray(4 * PAGE, 5 * PAGE))).toBe(true);
    expect(stats(a)).toMatchObject({ inlineHits: 2, skipped: 1, aioSubmissions: 1 });
    expect(stats(b)).toMatchObject({ inlineHits: 1, skipped: 1, aioSubmissions: 0 });
    // A later turn has a fresh budget.
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(nowaitInternals.spentNs()).toBe(0);
    expect(tryReadInline(b, fd, buf, 0, PAGE, 5 * PAGE)).toEqual({ bytesRead: PAGE, done: true });
    expect(buf.equals(data.subarray(5 * PAGE, 6 * PAGE))).toBe(true);
  });

  it('a miss is charged to the turn, so misses alone cannot hold the loop', () => {
    const { fd } = dataFile(8 * PAGE);
    setNowaitLimits({ turnBudgetNs: 100_000, callCostNs: 1000, byteCostNs: 0, missCostNs: 40_000 });
    nowaitInternals.resetTurn();
    let calls = 0;
    nowaitInternals.setPread(() => {
      calls++;
      return -EAGAIN;
    });
    const state = createNowaitState(fd);
    const buf = Buffer.alloc(PAGE);
    // 1000 + 40000 per miss: the third miss brings the turn to 123000 > 100000.
    for (let i = 0; i < 5; i++) expect(tryReadInline(state, fd, buf, 0, PAGE, 0)).toBeUndefined();
    expect(calls).toBe(3);
    expect(stats(state)).toMatchObject({ misses: 3, skipped: 2 });
  });

  it('an incomplete write, truncate or fsync blocks the fast path until it settles', () => {
    const { fd } = dataFile(4 * PAGE);
    const c = countPreads();
    const state = createNowaitState(fd);
    mutationStarted(state);
    mutationStarted(state);
    expect(state.mutations).toBe(2);
    expect(tryReadInline(state, fd, Buffer.alloc(PAGE), 0, PAGE, 0)).toBeUndefined();
    mutationSettled(state);
    expect(tryReadInline(state, fd, Buffer.alloc(PAGE), 0, PAGE, 0)).toBeUndefined();
    expect(c.calls).toBe(0);
    mutationSettled(state);
    mutationSettled(state); // extra settles do not go negative
    expect(state.mutations).toBe(0);
    const r = tryReadInline(state, fd, Buffer.alloc(PAGE), 0, PAGE, 0);
    expect(r === undefined ? 'off' : r.bytesRead).toBe(HAVE_RWF_NOWAIT ? PAGE : 'off');
    expect(stats(state).skipped).toBe(2);
    noteAio(state, 5);
    expect(stats(state).aioSubmissions).toBe(5);
  });
});

// The contract of the header comment, followed the way AioFile will follow
// it: a minimal file with AIO writes and fast-path reads on one descriptor.
describe('integration contract', () => {
  function miniFile(fd: number) {
    const state = createNowaitState(fd);
    return {
      state,
      write(buf: Buffer, position: number): Promise<number> {
        mutationStarted(state);
        return AioCb.fromSlice(fd, position, buf)
          .write()
          .finally(() => mutationSettled(state));
      },
      async read(buf: Buffer, position: number, signal?: AbortSignal): Promise<number> {
        if (signal?.aborted) throw new Error('aborted', { cause: signal.reason });
        return readThrough(state, fd, buf, 0, buf.length, position, aioRead(fd, buf));
      },
    };
  }

  it('a read after an unawaited write to the same range returns the new bytes, every time', async () => {
    const { fd } = dataFile(16 * PAGE);
    const file = miniFile(fd);
    for (let i = 0; i < 300; i++) {
      const pos = (i % 16) * PAGE;
      const fresh = randomBytes(PAGE);
      const w = file.write(fresh, pos);
      const got = Buffer.alloc(PAGE);
      const r = file.read(got, pos);
      await expect(w).resolves.toBe(PAGE);
      await expect(r).resolves.toBe(PAGE);
      expect(got.equals(fresh)).toBe(true);
      // And with the write settled, the same read is served inline.
      const again = Buffer.alloc(PAGE);
      await expect(file.read(again, pos)).resolves.toBe(PAGE);
      expect(again.equals(fresh)).toBe(true);
    }
    const s = stats(file.state);
    expect(s.skipped).toBe(300);
    if (HAVE_RWF_NOWAIT) expect(s.inlineHits).toBe(300);
  });

  it('an already-aborted signal rejects before anything is read', async () => {
    const { fd } = dataFile(PAGE);
    const c = countPreads();
    const file = miniFile(fd);
    const buf = Buffer.alloc(PAGE, 0xee);
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(file.read(buf, 0, ac.signal)).rejects.toThrow('aborted');
    expect(c.calls).toBe(0);
    expect(buf.equals(Buffer.alloc(PAGE, 0xee))).toBe(true);
    expect(stats(file.state)).toMatchObject({ inlineHits: 0, misses: 0, aioSubmissions: 0 });
  });
});

describe('limits', () => {
  it('setNowaitLimits merges, validates and restores the defaults', () => {
    const d = setNowaitLimits();
    expect(d).toEqual({
      callBytes: 1 << 20,
      turnBudgetNs: 1_000_000,
      callCostNs: 2000,
      byteCostNs: 0.4,
      missCostNs: 12_000,
    });
    expect(setNowaitLimits({ callBytes: 4096 })).toEqual({ ...d, callBytes: 4096 });
    expect(() => setNowaitLimits({ turnBudgetNs: -1 })).toThrow(RangeError);
    expect(() => setNowaitLimits({ callCostNs: Number.NaN })).toThrow(RangeError);
    expect(setNowaitLimits().callBytes).toBe(1 << 20);
  });
});
