// The submission window (native/engine.h, "The submission window"; glibc
// only): at most Engine::kWindow (256) requests of one environment are in
// libc per descriptor. Beyond that a request is *held* by the engine: it
// reports in progress (inProgress, error() === EINPROGRESS), can always be
// cancelled (AioCanceled, the promise rejects with ECANCELED, or AbortError
// through a signal), is never lost, and goes to libc as earlier ones finish,
// the most urgent aio_reqprio first, then in submission order, as glibc
// would have run it. That holds for AioCb.read(), write() and fsync() and
// for lioListio, with every notification.
//
// These tests check that guarantee across the space: depths on both sides of
// the window, every submission path and notification, reads that check
// their bytes, writes read back byte for byte (distinct chunks, and
// overlapping ones where only the order decides the result), cancellation
// and aborts of held requests, aioCancelAll, priorities, fsync, and the ends
// of an environment (process.exit, Worker.terminate) with requests held.
//
// Determinism comes from a FIFO (blockingFifo): its first read blocks inside
// libc and keeps glibc's one running request of the descriptor, so the
// window fills and stays full until the test writes bytes. Each read takes 4
// bytes and the test writes numbered 4-byte chunks: the chunk a read got
// tells in which order glibc ran it.
import { getEventListeners, setMaxListeners } from 'node:events';
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AbortError,
  AioCancelStat,
  AioCb,
  AioError,
  AioFile,
  AioFsyncMode,
  aioCancelAll,
  aioSuspend,
  LioMode,
  LioOpcode,
  lioListio,
  SigevNone,
  type SigevNotify,
  SigevSignal,
  SigevThread,
} from '../src/index.js';
import { detail, expectClean, lastJson, runModule } from './child.js';
import { blockingFifo, distEntryUrl, tempDir, tempFile, waitUntilReading } from './helpers.js';
import { pattern } from './stress/fixtures/pattern.mjs';

/** Engine::kWindow. */
const WINDOW = 256;
const { EAGAIN, ECANCELED, EINPROGRESS } = osConstants.errno;
// A real-time signal (glibc: 34..64): nothing needs to handle it, the
// library installs a no-op handler, and completions are observed by polling.
const RT_SIGNAL = 40;

// The list-level signal tests listen for SIGUSR2; a stray one with no
// listener would kill the test process.
const ignore = () => {};
beforeAll(() => {
  process.on('SIGUSR2', ignore);
});
afterAll(() => {
  process.off('SIGUSR2', ignore);
});

// ---------------------------------------------------------------------------
// Fixtures

type Outcome = { ok: true; value: number } | { ok: false; error: unknown };

/** Never rejects: every operation's promise is handled from its submission on. */
function outcome(p: Promise<number>): Promise<Outcome> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** `p`, or a rejection naming the hang when it has not settled after `ms` (a hang guard, not a speed check). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

const tick = () => new Promise<void>((r) => setImmediate(r));

// Reads of a pattern file: read i covers lenOf(i) bytes (1..64) inside the
// i-th 64-byte stride, at an offset that differs from one read to the next.
const STRIDE = 64;
const MAX_DEPTH = 5000;
const SRC = pattern(0x5eed, MAX_DEPTH * STRIDE);
const lenOf = (i: number) => 1 + ((i * 29) % STRIDE);
const offOf = (i: number) => i * STRIDE + ((i * 7) % (STRIDE - lenOf(i) + 1));

interface ReadOp {
  readonly cb: AioCb;
  readonly buf: Buffer;
  readonly off: number;
  readonly len: number;
}

function readOps(fd: number, n: number, sigev: (i: number) => SigevNotify, opcode = LioOpcode.LIO_NOP): ReadOp[] {
  return Array.from({ length: n }, (_, i) => {
    const len = lenOf(i);
    const off = offOf(i);
    const buf = Buffer.alloc(len, 0x2e);
    return { cb: AioCb.fromMutSlice(fd, off, buf, 0, sigev(i), opcode), buf, off, len };
  });
}

/** Every read returned its length and holds exactly its bytes of SRC. */
function expectReadsLanded(ops: readonly ReadOp[], results: readonly number[]): void {
  expect(results).toHaveLength(ops.length);
  const bad: string[] = [];
  ops.forEach((op, i) => {
    if (results[i] !== op.len) bad.push(`#${i}: returned ${results[i]}, expected ${op.len}`);
    else if (!op.buf.equals(SRC.subarray(op.off, op.off + op.len))) bad.push(`#${i}: wrong bytes`);
  });
  expect({ bad: bad.length, first: bad.slice(0, 20) }).toEqual({ bad: 0, first: [] });
}

/**
 * Observes SigevNone/SigevSignal blocks through aioSuspend until none is in
 * progress. aio_suspend returns only once a listed request has finished (a
 * held one must not make it return at once), so every wake-up must find at
 * least one fewer block in progress.
 */
async function suspendUntilDone(cbs: readonly AioCb[]): Promise<void> {
  let pending = cbs.filter((cb) => cb.inProgress);
  while (pending.length > 0) {
    await aioSuspend(pending);
    const still = pending.filter((cb) => cb.inProgress);
    expect(still.length, 'aioSuspend resolved while every listed block was still in progress').toBeLessThan(
      pending.length,
    );
    pending = still;
  }
}

/** Observes blocks by polling error() (nix's poll_aio), yielding to the event loop between rounds. */
async function pollUntilDone(cbs: readonly AioCb[]): Promise<void> {
  let pending = cbs.slice();
  for (;;) {
    pending = pending.filter((cb) => cb.error() === EINPROGRESS);
    if (pending.length === 0) return;
    await tick();
  }
}

/** The 4-byte chunk numbered k that the tests write into a FIFO (never '....'). */
function chunk(k: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(k + 0x1000);
  return b;
}
function chunks(from: number, to: number): Buffer {
  return Buffer.concat(Array.from({ length: to - from }, (_, j) => chunk(from + j)));
}
/** Which chunk a FIFO read got: -1 for none ('....'). */
function chunkOf(buf: Buffer): number {
  return buf.equals(Buffer.from('....')) ? -1 : buf.readUInt32BE(0) - 0x1000;
}

interface FifoRead {
  readonly cb: AioCb;
  readonly buf: Buffer;
  readonly out: Promise<Outcome>;
}

/** n 4-byte reads on the FIFO, submitted in order with cb.read(). */
function fifoReads(
  fd: number,
  n: number,
  sigev: (i: number) => SigevNotify = () => SigevThread,
  prio: (i: number) => number = () => 0,
  signal?: (i: number) => AbortSignal | undefined,
): FifoRead[] {
  return Array.from({ length: n }, (_, i) => {
    const buf = Buffer.alloc(4, 0x2e);
    const cb = AioCb.fromMutSlice(fd, 0, buf, prio(i), sigev(i));
    const s = signal?.(i);
    return { cb, buf, out: outcome(cb.read(s === undefined ? undefined : { signal: s })) };
  });
}

function expectCanceled(o: Outcome, syscall = 'aio_read'): void {
  expect(o.ok).toBe(false);
  const err = (o as { error: unknown }).error;
  expect(err).toBeInstanceOf(AioError);
  expect(err).toMatchObject({ code: 'ECANCELED', errno: -ECANCELED, syscall });
}

function expectAborted(o: Outcome, reason: unknown): void {
  expect(o.ok).toBe(false);
  const err = (o as { error: unknown }).error;
  expect(err).toBeInstanceOf(AbortError);
  expect(err).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
  expect((err as Error).cause).toBe(reason);
}

/**
 * Nothing of ours is left to run on the FIFO: a new read gets the next bytes
 * written (a request left queued or held would take them first, and the
 * probe would then wait behind it: the guard turns that into a failure).
 */
async function expectFifoDrained(fd: number): Promise<void> {
  const buf = Buffer.alloc(4);
  const probe = AioCb.fromMutSlice(fd, 0, buf).read();
  fs.writeSync(fd, 'ZZZZ');
  await expect(within(probe, 5000, 'a probe read behind the test requests')).resolves.toBe(4);
  expect(buf.toString()).toBe('ZZZZ');
}

// Writes: 512-byte blocks, each one's bytes unique (pattern(tag)).
const BLOCK = 512;

/** What the file holds after `writes` ran in the order given. */
function simulate(size: number, writes: readonly { off: number; data: Buffer }[]): Buffer {
  const out = Buffer.alloc(size);
  for (const w of writes) w.data.copy(out, w.off);
  return out;
}

/** The file equals `expected`, reported by block on a mismatch. */
function expectFileEquals(file: string, expected: Buffer): void {
  const got = fs.readFileSync(file);
  expect(got.length).toBe(expected.length);
  const bad: number[] = [];
  for (let at = 0; at < expected.length; at += BLOCK) {
    if (!got.subarray(at, at + BLOCK).equals(expected.subarray(at, at + BLOCK))) bad.push(at / BLOCK);
  }
  expect({ badBlocks: bad.length, first: bad.slice(0, 20) }).toEqual({ badBlocks: 0, first: [] });
}

// ---------------------------------------------------------------------------

const DEPTHS = [1, WINDOW - 1, WINDOW, WINDOW + 1, 1024, MAX_DEPTH];

describe('reads on one descriptor, on both sides of the window: every one completes with its own bytes', () => {
  it.each(DEPTHS)('lioListio(LIO_NOWAIT) of %i reads', async (depth) => {
    const { fd } = tempFile(SRC);
    const ops = readOps(fd, depth, (i) => (i % 5 === 4 ? SigevNone : SigevThread), LioOpcode.LIO_READ);
    const ps = lioListio(
      LioMode.LIO_NOWAIT,
      ops.map((op) => op.cb),
    );
    expect(ps).toHaveLength(depth);
    if (depth > 2 * WINDOW) {
      // One list, one pump at its end: the newest entry is still held.
      const last = ops.at(-1)!.cb;
      expect(last.inProgress).toBe(true);
      expect(last.error()).toBe(EINPROGRESS);
    }
    // The SigevNone entries settle when observed.
    await suspendUntilDone(ops.filter((_, i) => i % 5 === 4).map((op) => op.cb));
    expectReadsLanded(ops, await Promise.all(ps));
    expect(ops.every((op, i) => op.cb.aioReturn() === lenOf(i))).toBe(true);
  });

  it.each(DEPTHS)('cb.read() %i times', async (depth) => {
    const { fd } = tempFile(SRC);
    const ops = readOps(fd, depth, () => SigevThread);
    const ps = ops.map((op) => op.cb.read());
    if (depth > WINDOW) {
      // Submitted in this tick, beyond the window: held. Observing a held
      // request pumps the window (so a loop that never yields progresses),
      // so by the second look it may have run already; its result and
      // bytes are checked below either way.
      const last = ops.at(-1)!.cb;
      expect(last.inProgress).toBe(true);
      expect([EINPROGRESS, 0]).toContain(last.error());
    }
    expectReadsLanded(ops, await Promise.all(ps));
  });
});

describe('SigevNone and SigevSignal blocks beyond the window, observed by polling', () => {
  const kinds: [string, SigevNotify][] = [
    ['SigevNone', SigevNone],
    ['SigevSignal (real-time)', SigevSignal(RT_SIGNAL)],
  ];

  it.each(kinds)('%s: lioListio of 1024 reads, observed through aioSuspend', async (_name, sigev) => {
    const { fd } = tempFile(SRC);
    const ops = readOps(fd, 1024, () => sigev, LioOpcode.LIO_READ);
    const cbs = ops.map((op) => op.cb);
    const ps = lioListio(LioMode.LIO_NOWAIT, cbs);
    await suspendUntilDone(cbs);
    expectReadsLanded(ops, await Promise.all(ps));
  });

  it.each(kinds)('%s: cb.read() 1024 times, observed by polling error()', async (_name, sigev) => {
    const { fd } = tempFile(SRC);
    const ops = readOps(fd, 1024, () => sigev);
    const ps = ops.map((op) => op.cb.read());
    expect(ops.at(-1)!.cb.error()).toBe(EINPROGRESS);
    await pollUntilDone(ops.map((op) => op.cb));
    expect(ops.map((op) => op.cb.error()).filter((e) => e !== 0)).toEqual([]);
    expectReadsLanded(ops, await Promise.all(ps));
    expect(ops.every((op, i) => op.cb.aioReturn() === lenOf(i))).toBe(true);
  });

  it('aioSuspend over held blocks only waits for them (times out, then resolves once they ran)', async () => {
    const fifo = blockingFifo();
    const reads = fifoReads(fifo.fd, WINDOW + 20, () => SigevNone);
    await waitUntilReading(fifo.fd);
    const held = reads.slice(WINDOW).map((r) => r.cb);
    expect(held.every((cb) => cb.inProgress && cb.error() === EINPROGRESS)).toBe(true);
    // A block libc does not have must not end the wait at once.
    const err = await aioSuspend(held, 50).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AioError);
    expect(err).toMatchObject({ code: 'EAGAIN', errno: -EAGAIN, syscall: 'aio_suspend' });
    const waiting = aioSuspend(held);
    fs.writeSync(fifo.fd, chunks(0, WINDOW + 20));
    await waiting;
    await suspendUntilDone(reads.map((r) => r.cb));
    const outs = await Promise.all(reads.map((r) => r.out));
    expect(outs.filter((o) => !o.ok || o.value !== 4)).toEqual([]);
    expect(reads.map((r) => chunkOf(r.buf))).toEqual(Array.from({ length: WINDOW + 20 }, (_, i) => i));
  });

  // POSIX's plain polling loop, with no event-loop turn in it: glibc alone
  // finishes every request, so aio_error() eventually reports each one done.
  // Held requests are pumped only on the JavaScript thread's event loop
  // (delivery, tick flush), so this loop would spin for ever; the deadline
  // only turns such a hang into a failure.
  it('a synchronous error() loop (no event-loop turn) sees every block of a 600-read list finish', () => {
    const { fd } = tempFile(SRC);
    const ops = readOps(fd, 600, () => SigevNone, LioOpcode.LIO_READ);
    const ps = lioListio(
      LioMode.LIO_NOWAIT,
      ops.map((op) => op.cb),
    );
    for (const p of ps) p.catch(() => {});
    const deadline = Date.now() + 3000;
    let stuckAt = -1;
    for (let i = 0; i < ops.length && stuckAt < 0; i++) {
      while (ops[i]!.cb.error() === EINPROGRESS) {
        if (Date.now() > deadline) {
          stuckAt = i;
          break;
        }
      }
    }
    expect(stuckAt, `read #${stuckAt} (window ${WINDOW}) never left EINPROGRESS without an event-loop turn`).toBe(-1);
    expectReadsLanded(
      ops,
      ops.map((op) => op.cb.aioReturn()),
    );
  });

  it('lioListio(LIO_WAIT) of 1500 reads returns once every entry is done', async () => {
    const { fd } = tempFile(SRC);
    const ops = readOps(fd, 1500, (i) => (i % 2 === 0 ? SigevNone : SigevThread), LioOpcode.LIO_READ);
    const ps = lioListio(
      LioMode.LIO_WAIT,
      ops.map((op) => op.cb),
    );
    // No await between the call and these checks.
    expect(ops.filter((op) => op.cb.inProgress)).toHaveLength(0);
    expect(ops.filter((op) => op.cb.error() !== 0)).toHaveLength(0);
    expectReadsLanded(
      ops,
      ops.map((op) => op.cb.aioReturn()),
    );
    expect(await Promise.all(ps)).toEqual(ops.map((op) => op.len));
  });

  it('lioListio(LIO_WAIT) behind a LIO_NOWAIT list on the same descriptor', async () => {
    const { fd } = tempFile(SRC);
    const all = readOps(fd, 1200, () => SigevThread, LioOpcode.LIO_READ);
    const first = all.slice(0, 600);
    const second = all.slice(600);
    const p1 = lioListio(
      LioMode.LIO_NOWAIT,
      first.map((op) => op.cb),
    );
    const p2 = lioListio(
      LioMode.LIO_WAIT,
      second.map((op) => op.cb),
    );
    expect(second.filter((op) => op.cb.inProgress)).toHaveLength(0);
    const r2 = second.map((op) => op.cb.aioReturn());
    expectReadsLanded(all, [...(await Promise.all(p1)), ...r2]);
    expect(await Promise.all(p2)).toEqual(r2);
  });
});

describe('writes beyond the window: read back byte for byte', () => {
  const COUNT = 2000;
  // Distinct offsets, not in submission order.
  const slot = (i: number) => (i * 769) % COUNT;

  function distinctWrites(fd: number, opcode: LioOpcode, sigev: (i: number) => SigevNotify) {
    return Array.from({ length: COUNT }, (_, i) => {
      const data = pattern(i + 1, BLOCK);
      return { off: slot(i) * BLOCK, data, cb: AioCb.fromSlice(fd, slot(i) * BLOCK, data, 0, sigev(i), opcode) };
    });
  }

  it('2000 distinct 512-byte blocks through lioListio(LIO_NOWAIT)', async () => {
    const { fd, path: file } = tempFile(Buffer.alloc(COUNT * BLOCK));
    const ws = distinctWrites(fd, LioOpcode.LIO_WRITE, (i) => (i % 3 === 0 ? SigevNone : SigevThread));
    const ps = lioListio(
      LioMode.LIO_NOWAIT,
      ws.map((w) => w.cb),
    );
    await suspendUntilDone(ws.filter((_, i) => i % 3 === 0).map((w) => w.cb));
    expect(await Promise.all(ps)).toEqual(Array(COUNT).fill(BLOCK));
    expectFileEquals(file, simulate(COUNT * BLOCK, ws));
  });

  it('2000 distinct 512-byte blocks through cb.write()', async () => {
    const { fd, path: file } = tempFile(Buffer.alloc(COUNT * BLOCK));
    const ws = distinctWrites(fd, LioOpcode.LIO_NOP, (i) => (i % 4 === 0 ? SigevSignal(RT_SIGNAL) : SigevThread));
    const ps = ws.map((w) => w.cb.write());
    await pollUntilDone(ws.filter((_, i) => i % 4 === 0).map((w) => w.cb));
    expect(await Promise.all(ps)).toEqual(Array(COUNT).fill(BLOCK));
    expectFileEquals(file, simulate(COUNT * BLOCK, ws));
  });

  // Writes at one offset, one priority: glibc runs them in submission order,
  // so the file shows the newest over each byte. Lengths differ, so every
  // byte's final value depends on the order of many writes.
  const overlapping = (i: number) => ({ off: 0, data: pattern(0x10000 + i, BLOCK - ((i * 53) % BLOCK)) });

  it.each([
    ['cb.write()', 'write'],
    ['lioListio(LIO_NOWAIT)', 'lio'],
    ['cb.write() and lioListio, SigevThread and SigevNone, interleaved', 'mixed'],
  ])('800 overlapping writes at offset 0 through %s: the last submitted wins', async (_name, how) => {
    const N = 800;
    const { fd, path: file } = tempFile(Buffer.alloc(BLOCK));
    const ws = Array.from({ length: N }, (_, i) => overlapping(i));
    const none: AioCb[] = [];
    const ps: Promise<number>[] = [];
    // In groups of 200, each group through one path.
    for (let g = 0; g < N; g += 200) {
      const group = ws.slice(g, g + 200);
      const useLio = how === 'lio' || (how === 'mixed' && (g / 200) % 2 === 1);
      const sigev = how === 'mixed' && g >= 400 ? SigevNone : SigevThread;
      const cbs = group.map((w) =>
        AioCb.fromSlice(fd, w.off, w.data, 0, sigev, useLio ? LioOpcode.LIO_WRITE : LioOpcode.LIO_NOP),
      );
      if (sigev === SigevNone) none.push(...cbs);
      if (useLio) ps.push(...lioListio(LioMode.LIO_NOWAIT, cbs));
      else ps.push(...cbs.map((cb) => cb.write()));
    }
    await suspendUntilDone(none);
    expect(await Promise.all(ps)).toEqual(ws.map((w) => w.data.length));
    const got = fs.readFileSync(file);
    const expected = simulate(BLOCK, ws);
    expect(got.equals(expected), `the file is not what writes run in submission order leave`).toBe(true);
    expect(got.subarray(0, 4).readUInt32LE(0)).toBe(0x10000 + N - 1);
  });

  // A list with a list-level signal is never held (the signal must cover
  // its entries), so while the descriptor holds requests submitted earlier
  // it would overtake them: it is refused with EAGAIN, every entry as
  // before; once they have run it goes through and lands last.
  it('overlapping writes: a lioListio with a list-level SigevSignal is refused (EAGAIN) while 300 cb.write() are held, then lands last', async () => {
    const { fd, path: file } = tempFile(Buffer.alloc(BLOCK));
    const ws = Array.from({ length: 301 }, (_, i) => overlapping(i));
    const cbs = ws.slice(0, 300).map((w) => AioCb.fromSlice(fd, w.off, w.data));
    // Writes 256..299 are held now (nothing has pumped: same tick).
    const ps = cbs.map((cb) => cb.write());
    const last = ws[300]!;
    const lcb = AioCb.fromSlice(fd, last.off, last.data, 0, SigevNone, LioOpcode.LIO_WRITE);
    let thrown: unknown;
    try {
      lioListio(LioMode.LIO_NOWAIT, [lcb], SigevSignal('SIGUSR2'));
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toMatchObject({ code: 'EAGAIN', syscall: 'lio_listio' });
    expect(lcb.inProgress).toBe(false);
    expect(await Promise.all(ps)).toEqual(ws.slice(0, 300).map((w) => w.data.length));
    let signals = 0;
    const got = new Promise<void>((resolve) =>
      process.once('SIGUSR2', () => {
        signals++;
        resolve();
      }),
    );
    const [pl] = lioListio(LioMode.LIO_NOWAIT, [lcb], SigevSignal('SIGUSR2'));
    await got;
    await suspendUntilDone([lcb]);
    expect(await pl).toBe(last.data.length);
    expect(signals).toBe(1);
    const contents = fs.readFileSync(file);
    // The first word of each write's bytes is its tag: which write ran last there.
    expect({
      lastAtOffset0: contents.readUInt32LE(0) - 0x10000,
      asSubmitted: contents.equals(simulate(BLOCK, ws)),
    }).toEqual({
      lastAtOffset0: 300,
      asSubmitted: true,
    });
  });

  it('fsync beyond the window: 300 writes, fsync, 300 overlapping writes, fsync: all succeed, in order', async () => {
    const SIZE = 450 * BLOCK;
    const { fd, path: file } = tempFile(Buffer.alloc(SIZE));
    const before = Array.from({ length: 300 }, (_, i) => ({ off: i * BLOCK, data: pattern(0x20000 + i, BLOCK) }));
    // Blocks 150..449: half of them over blocks written before the fsync.
    const after = Array.from({ length: 300 }, (_, i) => ({
      off: (150 + i) * BLOCK,
      data: pattern(0x30000 + i, BLOCK),
    }));
    const wp1 = before.map((w, i) => AioCb.fromSlice(fd, w.off, w.data, 0, i % 2 ? SigevNone : SigevThread));
    const p1 = wp1.map((cb) => cb.write());
    const sync1 = AioCb.fromFd(fd);
    const ps1 = sync1.fsync(AioFsyncMode.O_DSYNC);
    // Held: the descriptor already holds writes.
    expect(sync1.inProgress).toBe(true);
    expect(sync1.error()).toBe(EINPROGRESS);
    const wp2 = after.map((w) => AioCb.fromSlice(fd, w.off, w.data));
    const p2 = wp2.map((cb) => cb.write());
    const sync2 = AioCb.fromFd(fd, 0, SigevNone);
    const ps2 = sync2.fsync(AioFsyncMode.O_SYNC);
    await suspendUntilDone([...wp1.filter((_, i) => i % 2), sync2]);
    expect(await Promise.all([...p1, ...p2])).toEqual(Array(600).fill(BLOCK));
    await expect(ps1).resolves.toBe(0);
    await expect(ps2).resolves.toBe(0);
    expect(sync1.aioReturn()).toBe(0);
    expect(sync2.aioReturn()).toBe(0);
    expectFileEquals(file, simulate(SIZE, [...before, ...after]));
  });
});

describe('held requests on a blocked FIFO: cancellation, order, aioCancelAll', () => {
  const N = 300; // reads 0..255 in libc (0 blocked in read(2)), 256..299 held

  it('cancel() of each held one (newest first) gives AioCanceled; the others complete in order', async () => {
    const fifo = blockingFifo();
    const reads = fifoReads(fifo.fd, N, (i) => (i % 3 === 0 ? SigevNone : SigevThread));
    await waitUntilReading(fifo.fd);
    for (const r of reads.slice(WINDOW)) {
      expect(r.cb.inProgress).toBe(true);
      expect(r.cb.error()).toBe(EINPROGRESS);
    }
    for (let i = N - 1; i >= WINDOW; i--) expect(reads[i]!.cb.cancel(), `read #${i}`).toBe(AioCancelStat.AioCanceled);
    for (const r of reads.slice(WINDOW)) {
      expectCanceled(await r.out);
      expect(r.cb.inProgress).toBe(false);
      expect(r.cb.error()).toBe(ECANCELED);
      expect(r.buf.toString()).toBe('....');
      // Cancelling again: nothing left to cancel.
      expect(r.cb.cancel()).toBe(AioCancelStat.AioAllDone);
    }
    fs.writeSync(fifo.fd, chunks(0, WINDOW));
    await suspendUntilDone(reads.slice(0, WINDOW).map((r) => r.cb));
    const outs = await Promise.all(reads.slice(0, WINDOW).map((r) => r.out));
    expect(outs.filter((o) => !o.ok || o.value !== 4)).toEqual([]);
    expect(reads.slice(0, WINDOW).map((r) => chunkOf(r.buf))).toEqual(Array.from({ length: WINDOW }, (_, i) => i));
    await expectFifoDrained(fifo.fd);
  });

  it('cancelling every other held read keeps the order of the rest across the window', async () => {
    const fifo = blockingFifo();
    const M = 700;
    const reads = fifoReads(fifo.fd, M);
    await waitUntilReading(fifo.fd);
    const cancelled = new Set<number>();
    for (let i = WINDOW; i < M; i += 2) {
      expect(reads[i]!.cb.cancel(), `read #${i}`).toBe(AioCancelStat.AioCanceled);
      cancelled.add(i);
    }
    const kept = reads.filter((_, i) => !cancelled.has(i));
    fs.writeSync(fifo.fd, chunks(0, kept.length));
    const outs = await Promise.all(reads.map((r) => r.out));
    outs.forEach((o, i) => {
      if (cancelled.has(i)) expectCanceled(o);
    });
    expect(kept.map((r) => chunkOf(r.buf))).toEqual(kept.map((_, k) => k));
    expect(reads.filter((_, i) => cancelled.has(i)).every((r) => r.buf.toString() === '....')).toBe(true);
    await expectFifoDrained(fifo.fd);
  });

  it('an AbortSignal on each held read: AbortError with the reason; the others complete', async () => {
    const fifo = blockingFifo();
    const controllers = Array.from({ length: N }, () => new AbortController());
    const reads = fifoReads(
      fifo.fd,
      N,
      () => SigevThread,
      () => 0,
      (i) => controllers[i]!.signal,
    );
    await waitUntilReading(fifo.fd);
    const reason = new Error('held, aborted');
    for (let i = N - 1; i >= WINDOW; i--) controllers[i]!.abort(reason);
    for (const r of reads.slice(WINDOW)) {
      expectAborted(await r.out, reason);
      expect(r.cb.error()).toBe(ECANCELED);
      expect(r.buf.toString()).toBe('....');
    }
    fs.writeSync(fifo.fd, chunks(0, WINDOW));
    const outs = await Promise.all(reads.slice(0, WINDOW).map((r) => r.out));
    expect(outs.filter((o) => !o.ok || o.value !== 4)).toEqual([]);
    expect(reads.slice(0, WINDOW).map((r) => chunkOf(r.buf))).toEqual(Array.from({ length: WINDOW }, (_, i) => i));
    expect(controllers.map((c) => getEventListeners(c.signal, 'abort').length).filter((n) => n !== 0)).toEqual([]);
    await expectFifoDrained(fifo.fd);
  });

  // aio_cancel(fd, NULL) cancels every queued request on the descriptor; the
  // held ones are this library's queue for it and must go too (else they
  // reach libc after the caller cancelled everything, possibly after it
  // closed the descriptor).
  it('aioCancelAll(fd) cancels the held requests too; only the running one completes', async () => {
    const fifo = blockingFifo();
    const reads = fifoReads(fifo.fd, N, (i) => (i % 2 === 0 ? SigevThread : SigevNone));
    await waitUntilReading(fifo.fd);
    // glibc: AIO_NOTCANCELED, since one request (the blocked read) runs.
    expect(aioCancelAll(fifo.fd)).toBe(AioCancelStat.AioNotCanceled);
    const status = (from: number, to: number) =>
      reads
        .slice(from, to)
        .map((r, k) => [from + k, r.cb.error()])
        .filter(([, e]) => e !== ECANCELED);
    expect({ queuedInLibc: status(1, WINDOW), held: status(WINDOW, N) }, 'requests not cancelled').toEqual({
      queuedInLibc: [],
      held: [],
    });
    for (const r of reads.slice(1)) {
      expectCanceled(await r.out);
      expect(r.buf.toString()).toBe('....');
    }
    expect(reads[0]!.cb.inProgress).toBe(true);
    fs.writeSync(fifo.fd, chunk(0));
    const first = await reads[0]!.out;
    expect(first).toEqual({ ok: true, value: 4 });
    expect(chunkOf(reads[0]!.buf)).toBe(0);
    expect(aioCancelAll(fifo.fd)).toBe(AioCancelStat.AioAllDone);
    await expectFifoDrained(fifo.fd);
  });

  it('a lioListio with a list-level SigevSignal is refused (EAGAIN) while reads are held, then runs after them', async () => {
    const fifo = blockingFifo();
    const reads = fifoReads(fifo.fd, N);
    await waitUntilReading(fifo.fd);
    const lbuf = Buffer.alloc(4, 0x2e);
    const lcb = AioCb.fromMutSlice(fifo.fd, 0, lbuf, 0, SigevNone, LioOpcode.LIO_READ);
    expect(() => lioListio(LioMode.LIO_NOWAIT, [lcb], SigevSignal('SIGUSR2'))).toThrow(
      expect.objectContaining({ code: 'EAGAIN', syscall: 'lio_listio' }),
    );
    expect(lcb.inProgress).toBe(false);
    fs.writeSync(fifo.fd, chunks(0, N));
    const outs = await Promise.all(reads.map((r) => r.out));
    expect(outs.filter((o) => !o.ok || o.value !== 4)).toEqual([]);
    let statusAtSignal = -1;
    const got = new Promise<void>((resolve) =>
      process.once('SIGUSR2', () => {
        statusAtSignal = lcb.error();
        resolve();
      }),
    );
    const [pl] = lioListio(LioMode.LIO_NOWAIT, [lcb], SigevSignal('SIGUSR2'));
    const lout = outcome(pl as Promise<number>);
    fs.writeSync(fifo.fd, chunks(N, N + 1));
    await got;
    // The list's signal comes once its entry finished.
    expect(statusAtSignal).toBe(0);
    await suspendUntilDone([lcb]);
    expect(await lout).toEqual({ ok: true, value: 4 });
    expect({ list: chunkOf(lbuf), reads: reads.map((r) => chunkOf(r.buf)) }).toEqual({
      list: N,
      reads: Array.from({ length: N }, (_, i) => i),
    });
  });
});

describe('an AbortController over 1000 queued reads on one descriptor', () => {
  it('FIFO: every read behind the running one is aborted (in libc or held); the running one completes', async () => {
    const fifo = blockingFifo();
    const ac = new AbortController();
    setMaxListeners(2000, ac.signal);
    const reads = fifoReads(
      fifo.fd,
      1000,
      (i) => (i % 2 ? SigevNone : SigevThread),
      () => 0,
      () => ac.signal,
    );
    await waitUntilReading(fifo.fd);
    const reason = new Error('stop them all');
    ac.abort(reason);
    for (const r of reads.slice(1)) {
      expectAborted(await r.out, reason);
      expect(r.buf.toString()).toBe('....');
    }
    expect(reads[0]!.cb.inProgress).toBe(true);
    fifo.release(4);
    expect(await reads[0]!.out).toEqual({ ok: true, value: 4 });
    expect(reads[0]!.buf.toString()).toBe('****');
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    await expectFifoDrained(fifo.fd);
  });

  it('regular file, aborted in the submitting tick: each read is aborted or holds its bytes', async () => {
    const { fd } = tempFile(SRC);
    const ac = new AbortController();
    setMaxListeners(2000, ac.signal);
    const ops = readOps(fd, 1000, (i) => (i % 2 ? SigevNone : SigevThread));
    const outs = ops.map((op) => outcome(op.cb.read({ signal: ac.signal })));
    const reason = new Error('abort');
    ac.abort(reason);
    // SigevNone ones that were not cancelled settle when observed.
    await suspendUntilDone(ops.map((op) => op.cb));
    const results = await Promise.all(outs);
    let aborted = 0;
    results.forEach((o, i) => {
      const op = ops[i]!;
      if (o.ok) {
        expect(o.value).toBe(op.len);
        expect(op.buf.equals(SRC.subarray(op.off, op.off + op.len))).toBe(true);
      } else {
        expectAborted(o, reason);
        expect(op.buf.equals(Buffer.alloc(op.len, 0x2e))).toBe(true);
        aborted++;
      }
    });
    // Everything beyond the window was still held when the signal fired.
    expect(aborted).toBeGreaterThanOrEqual(1000 - WINDOW);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('AioFile (concurrency 2000, one descriptor, a FIFO): 1000 reads with one signal, aborted; no warning', async () => {
    const fifo = blockingFifo();
    // The library's own signal fan-out: no setMaxListeners needed.
    const file = AioFile.fromFd(fifo.fd, { concurrency: 2000, nowait: false });
    const ac = new AbortController();
    const bufs = Array.from({ length: 1000 }, () => Buffer.alloc(4, 0x2e));
    const outs = bufs.map((buf) =>
      file.read(buf, { position: 0, signal: ac.signal }).then(
        (r) => ({ ok: true as const, value: r.bytesRead }),
        (error: unknown) => ({ ok: false as const, error }),
      ),
    );
    await waitUntilReading(fifo.fd);
    await tick();
    const reason = new Error('abort the file reads');
    ac.abort(reason);
    fifo.release(4);
    const results = await Promise.all(outs);
    expect(results[0]).toEqual({ ok: true, value: 4 });
    expect(bufs[0]!.toString()).toBe('****');
    for (const o of results.slice(1)) expectAborted(o, reason);
    expect(bufs.slice(1).every((b) => b.toString() === '....')).toBe(true);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    await file.close();
    await expectFifoDrained(fifo.fd);
  });
});

describe('priorities beyond the window', () => {
  // One 4-byte chunk at a time, each written only after the previous
  // completion was delivered (a delivery pumps the window before promises
  // settle), so glibc's choice of the next request is the only variable.
  // glibc never overtakes a descriptor's head request; after it, the most
  // urgent queued one runs first. The window must keep that: the 50 prio-0
  // reads, held behind 299 prio-5 ones, go to libc first and run as soon as
  // they are there.
  it('50 prio-0 reads held behind 300 prio-5 reads run before the remaining prio-5 ones', async () => {
    const fifo = blockingFifo();
    const P5 = 300;
    const P0 = 50;
    const reads = fifoReads(
      fifo.fd,
      P5 + P0,
      () => SigevThread,
      (i) => (i < P5 ? 5 : 0),
    );
    let done = 0;
    for (const r of reads) r.out.then(() => done++);
    await waitUntilReading(fifo.fd);
    for (let step = 0; step < P5 + P0; step++) {
      fs.writeSync(fifo.fd, chunk(step));
      while (done < step + 1) await tick();
    }
    const outs = await Promise.all(reads.map((r) => r.out));
    expect(outs.filter((o) => !o.ok || o.value !== 4)).toEqual([]);
    const ran = reads.map((r) => chunkOf(r.buf));
    // Plain glibc (everything in libc) runs the prio-0 reads right after the
    // head. Held, they reach libc as the head finishes, when glibc has
    // already made prio-5 #1 the new head: that one read may run first, no
    // other. Each priority keeps its submission order.
    const start = ran[P5]!;
    const prio0 = Array.from({ length: P0 }, (_, j) => start + j);
    const prio5 = Array.from({ length: P5 + P0 }, (_, k) => k).filter((k) => k < start || k >= start + P0);
    expect({ prio0Start: start === 1 || start === 2, prio0: ran.slice(P5), prio5: ran.slice(0, P5) }).toEqual({
      prio0Start: true,
      prio0,
      prio5,
    });
  });
});

describe('the end of an environment with requests held', () => {
  let entry = '';
  beforeAll(() => {
    entry = distEntryUrl();
  }, 120_000);
  // read(2)'s number, for /proc/<pid>/task/<tid>/syscall (as waitUntilReading).
  const READ_NR = ({ x64: 0, arm64: 63, ia32: 3, arm: 3 } as Record<string, number>)[process.arch];
  const patternUrl = new URL('./stress/fixtures/pattern.mjs', import.meta.url).href;

  it('process.exit(0) right after 1000 writes on one descriptor: every one is in the file', () => {
    const COUNT = 1000;
    const SIZE = 1024;
    const file = path.join(tempDir(), 'data');
    fs.writeFileSync(file, Buffer.alloc(COUNT * SIZE));
    const r = runModule(
      entry,
      `
      const { pattern } = await import(${JSON.stringify(patternUrl)});
      const fd = fs.openSync(${JSON.stringify(file)}, 'r+');
      const block = (i) => pattern(i + 1, ${SIZE});
      // 600 through cb.write() (thread, none, real-time signal), then one
      // list of 400 (SigevNone entries): all but the first 256 are held.
      const sig = [m.SigevThread, m.SigevNone, m.SigevSignal(${RT_SIGNAL})];
      for (let i = 0; i < 600; i++) {
        m.AioCb.fromSlice(fd, i * ${SIZE}, block(i), 0, sig[i % 3]).write().catch(() => {});
      }
      const list = [];
      for (let i = 600; i < ${COUNT}; i++) {
        list.push(m.AioCb.fromSlice(fd, i * ${SIZE}, block(i), 0, m.SigevNone, m.LioOpcode.LIO_WRITE));
      }
      for (const p of m.lioListio(m.LioMode.LIO_NOWAIT, list)) p.catch(() => {});
      console.log('SUBMITTED');
      process.exit(0);
    `,
      { timeoutMs: 20_000 },
    );
    expect(r.stdout, detail(r)).toContain('SUBMITTED');
    const contents = fs.readFileSync(file);
    expect(contents.length).toBe(COUNT * SIZE);
    const missing: number[] = [];
    for (let i = 0; i < COUNT; i++) {
      if (!contents.subarray(i * SIZE, (i + 1) * SIZE).equals(pattern(i + 1, SIZE))) missing.push(i);
    }
    expect({ missing: missing.length, first: missing.slice(0, 20) }, detail(r)).toEqual({ missing: 0, first: [] });
    expectClean(r);
  });

  it('Workers terminated with 1000 reads on one descriptor (a file, and a blocked FIFO): clean exit 0', () => {
    const dir = tempDir();
    const data = path.join(dir, 'data');
    fs.writeFileSync(data, SRC.subarray(0, 64 * 1024));
    const fifo = path.join(dir, 'fifo');
    const workerSrc = `
      // Runs as a script or as a module (the parent is a module).
      (async () => {
        const { workerData: data, parentPort } = await import('node:worker_threads');
        const fs = (await import('node:fs')).default;
        const m = await import(data.url);
        const fd = data.fifoFd ?? fs.openSync(data.path, 'r');
        const sig = [m.SigevThread, m.SigevNone, m.SigevSignal(${RT_SIGNAL})];
        for (let i = 0; i < 1000; i++) {
          // Into a SharedArrayBuffer, which outlives the Worker: a read on a
          // FIFO goes through the request's own memory (native/request.h,
          // UseBounce), so even read #0, still in read(2) when the Worker
          // is gone, must leave it untouched.
          const cb = m.AioCb.fromMutPtr(fd, data.fifoFd === undefined ? i * 64 : 0, data.sab, i * 4, 4, 0, sig[i % 3]);
          cb.read().catch(() => {});
        }
        parentPort.postMessage('submitted');
        // Never turn the event loop again: what is held stays held until
        // terminate() tears the environment down.
        if (data.spin) for (;;);
      })();
    `;
    const r = runModule(
      entry,
      `
      const url = ${JSON.stringify(entry)};
      const codes = [];
      const start = (workerData) => new Promise((resolve, reject) => {
        const w = new Worker(${JSON.stringify(workerSrc)}, { eval: true, workerData: { url, ...workerData } });
        w.once('error', reject);
        w.once('message', (msg) => resolve(w));
      });
      // A regular file, five times: terminated while its reads are held.
      for (let round = 0; round < 5; round++) {
        const sab = new SharedArrayBuffer(4000);
        const w = await start({ path: ${JSON.stringify(data)}, sab, spin: true });
        codes.push(await w.terminate());
      }
      // A FIFO: read #0 blocks in read(2), 255 wait in libc, 744 are held.
      execFileSync('mkfifo', [${JSON.stringify(fifo)}]);
      const fifoFd = fs.openSync(${JSON.stringify(fifo)}, 'r+');
      const sab = new SharedArrayBuffer(4000);
      const w = await start({ fifoFd, sab });
      const want = '${READ_NR} 0x' + fifoFd.toString(16) + ' ';
      while (!fs.readdirSync('/proc/self/task').some((t) => {
        try { return fs.readFileSync('/proc/self/task/' + t + '/syscall', 'utf8').startsWith(want); } catch { return false; }
      })) await new Promise((r) => setTimeout(r, 1));
      codes.push(await w.terminate());
      // Only read #0 is left: it takes 'WXYZ' (into its own memory), and the
      // other 64 bytes stay in the FIFO.
      fs.writeSync(fifoFd, 'WXYZ' + 'r'.repeat(64));
      const bytes = new Uint8Array(sab);
      // Until no thread has been inside read(2) on it for 40 ms in a row (a
      // woken reader shows 'running' in /proc for a moment, not the call).
      const reading = () => fs.readdirSync('/proc/self/task').some((t) => {
        try { return fs.readFileSync('/proc/self/task/' + t + '/syscall', 'utf8').startsWith(want); } catch { return false; }
      });
      for (let quiet = 0; quiet < 20; ) {
        quiet = reading() ? 0 : quiet + 1;
        await new Promise((r) => setTimeout(r, 2));
      }
      const rest = fs.openSync(${JSON.stringify(fifo)}, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      const left = Buffer.alloc(100);
      const n = fs.readSync(rest, left);
      const others = bytes.subarray(4).some((b) => b !== 0);
      // The main thread's own instance still works.
      const buf = Buffer.alloc(100);
      const fd = fs.openSync(${JSON.stringify(data)}, 'r');
      const got = await m.AioCb.fromMutSlice(fd, 1000, buf).read();
      console.log(JSON.stringify({ codes, first: Buffer.from(sab, 0, 4).toString('hex'), left: left.toString('latin1', 0, n), others, got, bytes: buf.toString('hex') }));
    `,
      { timeoutMs: 30_000 },
    );
    expectClean(r);
    expect(lastJson(r), detail(r)).toEqual({
      codes: [1, 1, 1, 1, 1, 1],
      first: '00000000',
      left: 'r'.repeat(64),
      others: false,
      got: 100,
      bytes: SRC.subarray(1000, 1100).toString('hex'),
    });
  });
});
