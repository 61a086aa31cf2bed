// The page-cache fast path through AioFile: ordering behind writes, partial
// hits, O_DIRECT, the nowait options, stats(), advise(), batch and the
// sequential readers. Correctness only (every byte checked); speed is the
// benchmark's job. The policy itself is tested in nowait.test.ts.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nowaitInternals, setNowaitLimits } from '../src/api/nowait.js';
import { O_DIRECT } from '../src/core/constants.js';
import { FadviseAdvice, HAVE_RWF_NOWAIT, posixFadvise, preadNowait } from '../src/core/nowait.js';
import { AbortError, AioFile, alignedBuffer, open } from '../src/index.js';
import { rejection, tempDir, tempFile } from './helpers.js';

const PAGE = 4096;

afterEach(() => {
  nowaitInternals.setPread(undefined);
  setNowaitLimits();
  nowaitInternals.resetTurn();
});

/** A file of `size` random bytes, flushed so its pages are clean (droppable). */
function dataFile(size: number): { path: string; data: Buffer } {
  const p = path.join(tempDir(), 'data');
  const data = randomBytes(size);
  const fd = fs.openSync(p, 'w');
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return { path: p, data };
}

function probeDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'posix-aio-probe-'));
}

// Whether a cached read is served inline here (the addon has RWF_NOWAIT and
// the temporary file system honours it).
const canHit = (() => {
  if (!HAVE_RWF_NOWAIT) return false;
  const dir = probeDir();
  const p = path.join(dir, 'probe');
  fs.writeFileSync(p, Buffer.alloc(PAGE, 1));
  const fd = fs.openSync(p, 'r');
  try {
    return preadNowait(fd, Buffer.alloc(PAGE), 0) === PAGE;
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
})();

// Whether a dropped page misses here (the file system drops clean pages on
// POSIX_FADV_DONTNEED: ext4, xfs, btrfs do; tmpfs does not).
const canMiss = (() => {
  if (!canHit) return false;
  const dir = probeDir();
  const p = path.join(dir, 'probe');
  const fd = fs.openSync(p, 'w+');
  try {
    fs.writeSync(fd, Buffer.alloc(4 * PAGE, 1));
    fs.fsyncSync(fd);
    posixFadvise(fd, 0, 0, FadviseAdvice.POSIX_FADV_DONTNEED);
    return preadNowait(fd, Buffer.alloc(PAGE), 0) < 0;
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
})();

// Whether the temporary file system accepts O_DIRECT (tmpfs refuses it).
const directRefused: string | undefined = (() => {
  if (O_DIRECT === undefined) return 'the platform has no O_DIRECT';
  const dir = probeDir();
  const p = path.join(dir, 'probe');
  fs.writeFileSync(p, Buffer.alloc(PAGE, 1));
  try {
    fs.closeSync(fs.openSync(p, fs.constants.O_RDONLY | O_DIRECT));
    return undefined;
  } catch (e) {
    return `the temporary file system refuses O_DIRECT (${(e as NodeJS.ErrnoException).code})`;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
})();

describe('ordering: a read never overtakes a write, truncate or sync submitted before it', () => {
  it('a read after an unawaited write to the same range returns the new bytes (2,000 iterations)', async () => {
    const size = 64 * PAGE;
    const { path: p, data } = dataFile(size);
    const model = Buffer.from(data);
    const file = await open(p, 'r+');
    try {
      for (let i = 0; i < 2000; i++) {
        const at = ((i * 7919) % 63) * PAGE + (i % 3) * 100;
        const bytes = randomBytes(PAGE - 200);
        bytes.copy(model, at);
        const w = file.write(bytes, 0, bytes.length, at);
        const r = file.read(Buffer.alloc(bytes.length), 0, bytes.length, at);
        const [{ bytesWritten }, { bytesRead, buffer }] = await Promise.all([w, r]);
        expect(bytesWritten).toBe(bytes.length);
        expect(bytesRead).toBe(bytes.length);
        if (!buffer.equals(bytes)) expect.fail(`iteration ${i}: the read at ${at} overtook the write`);
        // An awaited read between writes may be served inline.
        if (i % 10 === 0) {
          const { buffer: again } = await file.read(Buffer.alloc(PAGE), 0, PAGE, at - (at % PAGE));
          expect(again.equals(model.subarray(at - (at % PAGE), at - (at % PAGE) + PAGE))).toBe(true);
        }
      }
      const s = file.stats();
      // Every read issued behind an incomplete write was kept off the fast path.
      expect(s.skipped).toBeGreaterThanOrEqual(2000);
      if (canHit) expect(s.inlineHits).toBeGreaterThan(0);
    } finally {
      await file.close();
    }
    expect(fs.readFileSync(p).equals(model)).toBe(true);
  });

  it('a read issued while a write at the file position is pending is not tried inline', async () => {
    // (The AIO read is not ordered after a write queued on the file position:
    // that write is submitted a microtask later. Only the fast path's refusal
    // is checked; the bytes are the old page or the new one, whole.)
    const { path: p, data } = dataFile(4 * PAGE);
    const file = await open(p, 'r+');
    try {
      const bytes = randomBytes(PAGE);
      const skipped = file.stats().skipped;
      const w = file.write(bytes, 0, PAGE, null);
      const r = file.read(Buffer.alloc(PAGE), 0, PAGE, 0);
      await w;
      const { buffer } = await r;
      expect(buffer.equals(bytes) || buffer.equals(data.subarray(0, PAGE))).toBe(true);
      if (file.stats().disabled === undefined) expect(file.stats().skipped).toBe(skipped + 1);
      const { buffer: after } = await file.read(Buffer.alloc(PAGE), 0, PAGE, 0);
      expect(after.equals(bytes)).toBe(true);
    } finally {
      await file.close();
    }
  });

  it('a read behind an unawaited truncate or sync is not tried inline; behind write + sync it sees the write', async () => {
    const { path: p } = dataFile(8 * PAGE);
    const file = await open(p, 'r+');
    try {
      for (let i = 0; i < 50; i++) {
        // (The AIO read itself is not ordered after ftruncate, which runs in
        // libuv's pool: only the fast path's refusal is checked here.)
        const skipped = file.stats().skipped;
        const t = file.truncate(8 * PAGE);
        const r = file.read(Buffer.alloc(PAGE), 0, PAGE, 0);
        await Promise.all([t, r]);
        if (file.stats().disabled === undefined) expect(file.stats().skipped).toBe(skipped + 1);
        const bytes = randomBytes(PAGE);
        const w = file.write(bytes, 0, PAGE, 0);
        const s = file.sync();
        const r2 = file.read(Buffer.alloc(PAGE), 0, PAGE, 0);
        await Promise.all([w, s]);
        expect((await r2).buffer.equals(bytes)).toBe(true);
      }
    } finally {
      await file.close();
    }
  });

  it('batch: a read entry after a write entry sees the write; reads before it may be inline', async () => {
    const { path: p, data } = dataFile(4 * PAGE);
    const file = await open(p, 'r+');
    try {
      const bytes = randomBytes(PAGE);
      const before = Buffer.alloc(PAGE);
      const after = Buffer.alloc(PAGE);
      const results = await Promise.all(
        file.batch([
          { op: 'read', buffer: before, position: PAGE },
          { op: 'write', buffer: bytes, position: PAGE },
          { op: 'read', buffer: after, position: PAGE },
        ]),
      );
      expect(results).toEqual([PAGE, PAGE, PAGE]);
      expect(before.equals(data.subarray(PAGE, 2 * PAGE))).toBe(true);
      expect(after.equals(bytes)).toBe(true);
    } finally {
      await file.close();
    }
  });
});

describe('partial hits', () => {
  // A 4 MiB file whose pages are all dropped, then its first 16 pages read
  // back through AIO on the file's own descriptor, whose read-ahead is off
  // ('random' applies to that open file): the start is cached, the rest is
  // not. Nothing probes the rest with RWF_NOWAIT first, since a miss itself
  // starts read-ahead there.
  const SIZE = 1024 * PAGE;
  async function withHole(): Promise<{ file: AioFile; data: Buffer }> {
    const { path: p, data } = dataFile(SIZE);
    const file = await open(p, 'r+');
    await file.advise(0, 0, 'random');
    // Twice, 5 ms apart: DONTNEED is best effort (a page in a per-CPU LRU
    // batch can survive one call).
    await file.advise(0, 0, 'dontneed');
    await new Promise((r) => setTimeout(r, 5));
    await file.advise(0, 0, 'dontneed');
    await file.read(Buffer.alloc(16 * PAGE), { position: 0, nowait: false });
    return { file, data };
  }

  it('a read over a partly cached range returns every byte (the uncached rest through AIO)', async () => {
    const { file, data } = await withHole();
    try {
      // 1 MiB: the largest read tried inline by default (limits.callBytes).
      const buf = Buffer.alloc(256 * PAGE);
      const { bytesRead } = await file.read(buf, 0, buf.length, 0);
      expect(bytesRead).toBe(buf.length);
      expect(buf.equals(data.subarray(0, buf.length))).toBe(true);
      const s = file.stats();
      if (canMiss) {
        expect(s).toMatchObject({ inlinePartial: 1, inlineHits: 0, aioSubmissions: 2 });
        expect(s.inlineBytes).toBeGreaterThanOrEqual(16 * PAGE);
        expect(s.inlineBytes).toBeLessThan(buf.length);
      }
    } finally {
      await file.close();
    }
  });

  it('a read starting in the dropped range misses and still returns every byte', async () => {
    const { file, data } = await withHole();
    try {
      const buf = Buffer.alloc(8 * PAGE);
      const { bytesRead } = await file.read(buf, 0, buf.length, 900 * PAGE);
      expect(bytesRead).toBe(8 * PAGE);
      expect(buf.equals(data.subarray(900 * PAGE, 908 * PAGE))).toBe(true);
      if (canMiss) expect(file.stats()).toMatchObject({ misses: 1, inlineHits: 0, aioSubmissions: 2 });
    } finally {
      await file.close();
    }
  });

  it('batch over a partly cached range: every entry gets every byte', async () => {
    const { file, data } = await withHole();
    try {
      const bufs = Array.from({ length: 8 }, () => Buffer.alloc(SIZE / 8));
      const results = await Promise.all(
        file.batch(bufs.map((buffer, i) => ({ op: 'read' as const, buffer, position: (i * SIZE) / 8 }))),
      );
      expect(results).toEqual(Array(8).fill(SIZE / 8));
      expect(Buffer.concat(bufs).equals(data)).toBe(true);
      if (canMiss) {
        const s = file.stats();
        expect(s.inlinePartial).toBe(1);
        expect(s.aioSubmissions).toBe(1 + 8);
      }
    } finally {
      await file.close();
    }
  });

  it('a short read at end of file stays a true short read', async () => {
    const { path: p, data } = dataFile(3 * PAGE + 100);
    const file = await open(p);
    try {
      const buf = Buffer.alloc(2 * PAGE);
      const { bytesRead } = await file.read(buf, 0, buf.length, 2 * PAGE);
      expect(bytesRead).toBe(PAGE + 100);
      expect(buf.subarray(0, bytesRead).equals(data.subarray(2 * PAGE))).toBe(true);
      expect((await file.read(buf, 0, buf.length, 4 * PAGE)).bytesRead).toBe(0);
    } finally {
      await file.close();
    }
  });
});

describe('O_DIRECT never takes the fast path', () => {
  it.skipIf(directRefused !== undefined)(
    `open(..., { direct: true }) and fromFd of an O_DIRECT descriptor${directRefused ? ` (skipped: ${directRefused})` : ''}`,
    async () => {
      const { path: p, data } = dataFile(16 * PAGE);
      const file = await open(p, 'r', undefined, { direct: true });
      const fd = fs.openSync(p, fs.constants.O_RDONLY | (O_DIRECT as number));
      const wrapped = AioFile.fromFd(fd, { autoClose: true });
      try {
        for (const f of [file, wrapped]) {
          for (let i = 0; i < 16; i++) {
            const buf = alignedBuffer(PAGE);
            const { bytesRead } = await f.read(buf, 0, PAGE, i * PAGE);
            expect(bytesRead).toBe(PAGE);
            expect(Buffer.from(buf).equals(data.subarray(i * PAGE, (i + 1) * PAGE))).toBe(true);
          }
          const s = f.stats();
          expect(s.disabled).toBe('O_DIRECT');
          expect(s.inlineHits + s.inlinePartial + s.misses).toBe(0);
          expect(s.aioSubmissions).toBe(16);
        }
      } finally {
        await file.close();
        await wrapped.close();
      }
    },
  );
});

describe('nowait: false', () => {
  it('for the file, in every open form and fromFd: no read is tried inline', async () => {
    const { path: p, data } = dataFile(8 * PAGE);
    const fd = fs.openSync(p, 'r');
    const files = [
      await open(p, 'r', 0o666, { nowait: false }),
      await open(p, 'r', { nowait: false }),
      await open(p, { flags: 'r', nowait: false }),
      AioFile.fromFd(fd, { nowait: false, autoClose: true }),
    ];
    try {
      for (const f of files) {
        for (let i = 0; i < 8; i++) {
          const { buffer } = await f.read(Buffer.alloc(PAGE), 0, PAGE, i * PAGE);
          expect(buffer.equals(data.subarray(i * PAGE, (i + 1) * PAGE))).toBe(true);
        }
        expect((await f.readFile()).equals(data)).toBe(true);
        const s = f.stats();
        expect(s).toMatchObject({ inlineHits: 0, inlinePartial: 0, misses: 0, disabled: 'nowait: false' });
        expect(s.aioSubmissions).toBeGreaterThanOrEqual(9);
      }
    } finally {
      for (const f of files) await f.close();
    }
  });

  it('per call (read, readFile, batch): those calls go to AIO, the others may be inline', async () => {
    const { path: p, data } = dataFile(8 * PAGE);
    const file = await open(p);
    try {
      await file.read(Buffer.alloc(PAGE), 0, PAGE, 0); // warm up
      const start = file.stats();
      for (let i = 0; i < 8; i++) {
        const { buffer } = await file.read(Buffer.alloc(PAGE), { position: i * PAGE, nowait: false });
        expect(buffer.equals(data.subarray(i * PAGE, (i + 1) * PAGE))).toBe(true);
      }
      const bufs = [Buffer.alloc(PAGE), Buffer.alloc(PAGE)];
      await Promise.all(
        file.batch(
          bufs.map((buffer, i) => ({ op: 'read' as const, buffer, position: i * PAGE })),
          { nowait: false },
        ),
      );
      expect(Buffer.concat(bufs).equals(data.subarray(0, 2 * PAGE))).toBe(true);
      const s = file.stats();
      expect(s.inlineHits).toBe(start.inlineHits);
      expect(s.skipped).toBe(start.skipped);
      expect(s.aioSubmissions).toBe(start.aioSubmissions + 10);
      if (canHit) {
        await file.read(Buffer.alloc(PAGE), { position: 0 });
        expect(file.stats().inlineHits).toBe(start.inlineHits + 1);
      }
    } finally {
      await file.close();
    }
  });

  it('a non-boolean nowait is a TypeError (ERR_INVALID_ARG_TYPE) in every place', async () => {
    const { path: p } = dataFile(PAGE);
    for (const bad of [0, 'false', null, {}]) {
      await expect(open(p, 'r', undefined, { nowait: bad as never })).rejects.toMatchObject({
        name: 'TypeError',
        code: 'ERR_INVALID_ARG_TYPE',
      });
      await expect(open(p, { flags: 'r', nowait: bad as never })).rejects.toThrow(TypeError);
      const fd = fs.openSync(p, 'r');
      try {
        expect(() => AioFile.fromFd(fd, { nowait: bad as never })).toThrow(TypeError);
      } finally {
        fs.closeSync(fd);
      }
    }
    const file = await open(p);
    try {
      await expect(file.read(Buffer.alloc(8), { position: 0, nowait: 1 as never })).rejects.toMatchObject({
        code: 'ERR_INVALID_ARG_TYPE',
      });
      await expect(file.readFile({ nowait: 'no' as never })).rejects.toThrow(TypeError);
      const [r] = file.batch([{ op: 'read', buffer: Buffer.alloc(8), position: 0 }], { nowait: 1 as never });
      await expect(r).rejects.toThrow(TypeError);
    } finally {
      await file.close();
    }
  });
});

describe('stats()', () => {
  it('counts inline hits, AIO submissions and reads skipped behind a write', async () => {
    const { path: p, data } = dataFile(16 * PAGE);
    const file = await open(p, 'r+');
    try {
      expect(file.stats()).toEqual({
        inlineHits: 0,
        inlinePartial: 0,
        inlineBytes: 0,
        misses: 0,
        skipped: 0,
        aioSubmissions: 0,
        disabled: HAVE_RWF_NOWAIT ? undefined : expect.any(String),
      });
      for (let i = 0; i < 16; i++) {
        const { buffer } = await file.read(Buffer.alloc(PAGE), 0, PAGE, i * PAGE);
        expect(buffer.equals(data.subarray(i * PAGE, (i + 1) * PAGE))).toBe(true);
      }
      let s = file.stats();
      if (canHit) {
        expect(s.inlineHits).toBe(16);
        expect(s.inlineBytes).toBe(16 * PAGE);
        expect(s.aioSubmissions).toBe(0);
      } else {
        expect(s.inlineHits).toBe(0);
        expect(s.inlineHits + s.misses + s.skipped + (s.disabled === undefined ? 0 : 16)).toBeGreaterThan(0);
      }
      const w = file.write(Buffer.alloc(PAGE, 1), 0, PAGE, 0);
      const r = file.read(Buffer.alloc(PAGE), 0, PAGE, 0);
      await w;
      expect((await r).buffer.equals(Buffer.alloc(PAGE, 1))).toBe(true);
      s = file.stats();
      if (s.disabled === undefined) expect(s.skipped).toBe(1);
      // A snapshot, readable after close.
      await file.close();
      expect(file.stats()).toEqual(s);
    } finally {
      await file.close();
    }
  });

  it('batch: inline hits resolve at once, the rest is one list counted as submissions', async () => {
    const { path: p, data } = dataFile(8 * PAGE);
    const file = await open(p);
    try {
      const bufs = Array.from({ length: 8 }, () => Buffer.alloc(PAGE));
      const results = await Promise.all(
        file.batch(bufs.map((buffer, i) => ({ op: 'read' as const, buffer, position: i * PAGE }))),
      );
      expect(results).toEqual(Array(8).fill(PAGE));
      expect(Buffer.concat(bufs).equals(data)).toBe(true);
      const s = file.stats();
      expect(s.inlineHits + s.aioSubmissions).toBeGreaterThanOrEqual(8);
      if (canHit) expect(s).toMatchObject({ inlineHits: 8, aioSubmissions: 0 });
    } finally {
      await file.close();
    }
  });

  it.skipIf(!canHit)(
    'readFile, readChunks, createReadStream, readLines and readableWebStream take the fast path',
    async () => {
      const text = Array.from({ length: 2000 }, (_, i) => `line ${i}`).join('\n');
      const p = path.join(tempDir(), 'text');
      fs.writeFileSync(p, text);
      const expected = Buffer.from(text);
      const collect = async (it: AsyncIterable<Uint8Array | string>) => {
        const parts: Buffer[] = [];
        for await (const c of it) parts.push(Buffer.from(c));
        return Buffer.concat(parts);
      };
      const cases: [string, (f: AioFile) => Promise<Buffer>][] = [
        ['readFile', (f) => f.readFile()],
        ['readChunks', (f) => collect(f.readChunks({ chunkSize: 1024 }))],
        ['createReadStream', (f) => collect(f.createReadStream({ autoClose: false, highWaterMark: 1024 }))],
        [
          'readLines',
          async (f) => {
            const lines: string[] = [];
            for await (const line of f.readLines({ autoClose: false })) lines.push(line);
            return Buffer.from(lines.join('\n'));
          },
        ],
        ['readableWebStream', (f) => collect(f.readableWebStream() as unknown as AsyncIterable<Uint8Array>)],
      ];
      for (const [name, run] of cases) {
        const file = await open(p);
        try {
          const got = await run(file);
          expect(got.equals(expected), name).toBe(true);
          expect(file.stats().inlineHits, name).toBeGreaterThan(0);
        } finally {
          await file.close();
        }
      }
    },
  );
});

describe('fallbacks', () => {
  it.each([
    ['EOPNOTSUPP', -os.constants.errno.EOPNOTSUPP],
    ['ENOSYS', -os.constants.errno.ENOSYS],
  ])('%s from the inline read turns the path off for the file; every byte still arrives through AIO', async (name, r) => {
    const { path: p, data } = dataFile(8 * PAGE);
    const file = await open(p);
    let calls = 0;
    nowaitInternals.setPread(() => {
      calls++;
      return r;
    });
    try {
      for (let i = 0; i < 8; i++) {
        const { buffer } = await file.read(Buffer.alloc(PAGE), 0, PAGE, i * PAGE);
        expect(buffer.equals(data.subarray(i * PAGE, (i + 1) * PAGE))).toBe(true);
      }
      const s = file.stats();
      if (HAVE_RWF_NOWAIT) {
        expect(calls).toBe(1);
        expect(s.disabled).toMatch(new RegExp(`^${name}`));
        expect(s).toMatchObject({ inlineHits: 0, misses: 1, aioSubmissions: 8 });
      }
    } finally {
      nowaitInternals.setPread(undefined);
      await file.close();
    }
  });

  it('another error of the inline read is not reported: the AIO read of the same range is', async () => {
    const { path: p, data } = dataFile(PAGE);
    const file = await open(p);
    nowaitInternals.setPread(() => -os.constants.errno.EIO);
    try {
      const { buffer } = await file.read(Buffer.alloc(PAGE), 0, PAGE, 0);
      expect(buffer.equals(data)).toBe(true);
      if (HAVE_RWF_NOWAIT) expect(file.stats()).toMatchObject({ misses: 1, disabled: undefined });
    } finally {
      nowaitInternals.setPread(undefined);
      await file.close();
    }
  });
});

describe('cancellation and close keep their contracts', () => {
  it('an already-aborted signal rejects before anything is read, inline or not', async () => {
    const { path: p } = dataFile(4 * PAGE);
    const file = await open(p);
    try {
      await file.read(Buffer.alloc(PAGE), 0, PAGE, 0);
      const before = file.stats();
      const ac = new AbortController();
      ac.abort(new Error('stop'));
      const buf = Buffer.alloc(PAGE);
      const e = await rejection(file.read(buf, { position: 0, signal: ac.signal }));
      expect(e).toBeInstanceOf(AbortError);
      expect(buf.equals(Buffer.alloc(PAGE))).toBe(true);
      await expect(file.readFile({ signal: ac.signal })).rejects.toBeInstanceOf(AbortError);
      const [b] = file.batch([{ op: 'read', buffer: buf, position: 0 }], { signal: ac.signal });
      await expect(b).rejects.toBeInstanceOf(AbortError);
      expect(buf.equals(Buffer.alloc(PAGE))).toBe(true);
      expect(file.stats()).toEqual(before);
    } finally {
      await file.close();
    }
  });

  it('a read after close() rejects with EBADF, cached or not', async () => {
    const { path: p } = dataFile(PAGE);
    const file = await open(p);
    await file.read(Buffer.alloc(PAGE), 0, PAGE, 0);
    const closing = file.close();
    await expect(file.read(Buffer.alloc(PAGE), 0, PAGE, 0)).rejects.toMatchObject({ code: 'EBADF' });
    await closing;
  });
});

describe('advise()', () => {
  it('accepts every advice name and resolves to undefined', async () => {
    const { path: p } = dataFile(4 * PAGE);
    const file = await open(p);
    try {
      for (const a of ['normal', 'sequential', 'random', 'willneed', 'dontneed', 'noreuse'] as const) {
        await expect(file.advise(0, 0, a)).resolves.toBeUndefined();
      }
      await expect(file.advise(0n, BigInt(PAGE), 'willneed')).resolves.toBeUndefined();
    } finally {
      await file.close();
    }
  });

  it.each([
    ['an unknown advice name', 0, 0, 'sometimes', TypeError],
    ['a non-string advice', 0, 0, 4, TypeError],
    ['a negative offset', -1, 0, 'normal', RangeError],
    ['a negative length', 0, -1, 'normal', RangeError],
    ['a fractional offset', 1.5, 0, 'normal', RangeError],
    ['a string offset', '0', 0, 'normal', TypeError],
  ])('rejects %s', async (_name, offset, length, advice, type) => {
    const { path: p } = dataFile(PAGE);
    const file = await open(p);
    try {
      await expect(file.advise(offset as never, length as never, advice as never)).rejects.toBeInstanceOf(type);
    } finally {
      await file.close();
    }
  });

  it('rejects with EBADF (syscall posix_fadvise) after close', async () => {
    const { path: p } = dataFile(PAGE);
    const file = await open(p);
    await file.close();
    await expect(file.advise(0, 0, 'normal')).rejects.toMatchObject({ code: 'EBADF', syscall: 'posix_fadvise' });
  });

  it('rejects with ESPIPE on a pipe', async () => {
    const [r, w] = pipeFds();
    const file = AioFile.fromFd(r, { autoClose: true });
    try {
      await expect(file.advise(0, 0, 'normal')).rejects.toMatchObject({ code: 'ESPIPE' });
    } finally {
      await file.close();
      fs.closeSync(w);
    }
  });
});

function pipeFds(): [number, number] {
  const dir = tempDir();
  const fifo = path.join(dir, 'fifo');
  // A FIFO opened read-write on both ends never blocks the open.
  execFileSync('mkfifo', [fifo]);
  const r = fs.openSync(fifo, fs.constants.O_RDWR);
  const w = fs.openSync(fifo, fs.constants.O_RDWR);
  return [r, w];
}

describe('a read or write submitted after truncate() runs after it', () => {
  it('write after an unawaited truncate lands on the truncated file, 200 times', async () => {
    const { path: p } = tempFile('x'.repeat(4096));
    await using file = await open(p, 'r+');
    const data = Buffer.from('hello');
    for (let i = 0; i < 200; i++) {
      const t = file.truncate(0);
      const w = file.write(data, 0, data.length, 0);
      await Promise.all([t, w]);
      expect(fs.readFileSync(p).toString()).toBe('hello');
      await file.write(Buffer.from('x'.repeat(4096)), 0, 4096, 0);
    }
  });

  it('a read through AIO after an unawaited truncate sees the truncated file, 200 times', async () => {
    const { path: p } = tempFile('y'.repeat(4096));
    await using file = await open(p, 'r+', 0o666, { nowait: false });
    const buf = Buffer.alloc(16);
    for (let i = 0; i < 200; i++) {
      const t = file.truncate(0);
      const r = file.read(buf, 0, buf.length, 0);
      await t;
      expect((await r).bytesRead).toBe(0);
      await file.write(Buffer.from('y'.repeat(4096)), 0, 4096, 0);
    }
  });
});
