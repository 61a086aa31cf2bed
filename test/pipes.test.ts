// Transfers on descriptors that can block for ever (pipes, FIFOs, character
// devices) go through memory of the request's own (native/request.h,
// UseBounce): a read still inside read(2) when its environment ends must
// not land in freed memory. Here the contract around that: the caller's
// buffer holds the bytes once the completion is observed, whatever the
// notification; a write sends the bytes the buffer held at submission; a
// cancelled read leaves the buffer untouched.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AioCancelStat,
  AioCb,
  aioSuspend,
  LioMode,
  LioOpcode,
  lioListio,
  SigevNone,
  SigevSignal,
  SigevThread,
} from '../src/index.js';
import { blockingFifo, tempDir, waitUntilReading } from './helpers.js';

const { EINPROGRESS, ECANCELED } = osConstants.errno;
const RT_SIGNAL = 42;

function bytes(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (seed * 31 + i * 7) & 0xff;
  return b;
}

describe('reads from a FIFO', () => {
  it('SigevThread: the promise resolves with the length and the buffer holds the bytes', async () => {
    const fifo = blockingFifo();
    const buf = Buffer.alloc(4096, 0xee);
    const p = AioCb.fromMutSlice(fifo.fd, 0, buf, 0, SigevThread).read();
    await waitUntilReading(fifo.fd);
    const data = bytes(1, 3000);
    fs.writeSync(fifo.fd, data);
    expect(await p).toBe(3000);
    expect(buf.subarray(0, 3000).equals(data)).toBe(true);
    // Past what was read, the buffer is as it was.
    expect(buf.subarray(3000).every((b) => b === 0xee)).toBe(true);
  });

  for (const [name, sigev] of [
    ['SigevNone', SigevNone],
    ['SigevSignal (real-time)', SigevSignal(RT_SIGNAL)],
  ] as const) {
    it(`${name}: the bytes are in the buffer once error() reports 0`, async () => {
      const fifo = blockingFifo();
      const buf = Buffer.alloc(512, 0xee);
      const cb = AioCb.fromMutSlice(fifo.fd, 0, buf, 0, sigev);
      const p = cb.read();
      await waitUntilReading(fifo.fd);
      expect(cb.error()).toBe(EINPROGRESS);
      const data = bytes(2, 512);
      fs.writeSync(fifo.fd, data);
      while (cb.error() === EINPROGRESS) await new Promise((r) => setTimeout(r, 1));
      expect(cb.error()).toBe(0);
      expect(buf.equals(data)).toBe(true);
      expect(await p).toBe(512);
    });

    it(`${name}: the bytes are in the buffer once aioSuspend resolves`, async () => {
      const fifo = blockingFifo();
      const buf = Buffer.alloc(100, 0xee);
      const cb = AioCb.fromMutSlice(fifo.fd, 0, buf, 0, sigev);
      const p = cb.read();
      await waitUntilReading(fifo.fd);
      const data = bytes(3, 100);
      fs.writeSync(fifo.fd, data);
      while (cb.inProgress) await aioSuspend([cb]);
      expect(buf.equals(data)).toBe(true);
      expect(await p).toBe(100);
    });
  }

  it('lioListio of 20 reads: each buffer holds its chunk, in order', async () => {
    const fifo = blockingFifo();
    const bufs = Array.from({ length: 20 }, () => Buffer.alloc(64, 0xee));
    const cbs = bufs.map((b, i) =>
      AioCb.fromMutSlice(fifo.fd, 0, b, 0, i % 2 ? SigevNone : SigevThread, LioOpcode.LIO_READ),
    );
    const ps = lioListio(LioMode.LIO_NOWAIT, cbs);
    await waitUntilReading(fifo.fd);
    const data = bytes(4, 64 * 20);
    fs.writeSync(fifo.fd, data);
    while (cbs.some((cb) => cb.inProgress)) await aioSuspend(cbs);
    expect(await Promise.all(ps)).toEqual(bufs.map(() => 64));
    bufs.forEach((b, i) => {
      expect(b.equals(data.subarray(i * 64, (i + 1) * 64)), `chunk ${i}`).toBe(true);
    });
  });

  it('a cancelled queued read leaves its buffer untouched', async () => {
    const fifo = blockingFifo();
    const first = Buffer.alloc(8, 0xee);
    const p1 = AioCb.fromMutSlice(fifo.fd, 0, first).read();
    await waitUntilReading(fifo.fd);
    const second = Buffer.alloc(8, 0xee);
    const cb2 = AioCb.fromMutSlice(fifo.fd, 0, second, 0, SigevNone);
    const p2 = cb2.read().then(
      () => 'resolved',
      (e: NodeJS.ErrnoException) => e.errno,
    );
    // Out of the tick batch, into libc's queue behind the running read.
    await new Promise((r) => setImmediate(r));
    expect(cb2.cancel()).toBe(AioCancelStat.AioCanceled);
    expect(cb2.error()).toBe(ECANCELED);
    expect(await p2).toBe(-ECANCELED);
    fs.writeSync(fifo.fd, bytes(5, 8));
    expect(await p1).toBe(8);
    expect(first.equals(bytes(5, 8))).toBe(true);
    expect(second.every((b) => b === 0xee)).toBe(true);
  });
});

describe('writes to a pipe', () => {
  it('the bytes the buffer held at submission are what the reader gets', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'fifo');
    execFileSync('mkfifo', [p]);
    const fd = fs.openSync(p, 'r+');
    try {
      const data = bytes(6, 2048);
      const buf = Buffer.from(data);
      const w = AioCb.fromSlice(fd, 0, buf).write();
      const n = await w;
      expect(n).toBe(2048);
      const back = Buffer.alloc(2048);
      expect(fs.readSync(fd, back)).toBe(2048);
      expect(back.equals(data)).toBe(true);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('character devices', () => {
  it('a 1 MiB read of /dev/zero fills the caller buffer', async () => {
    const fd = fs.openSync('/dev/zero', 'r');
    try {
      const buf = Buffer.alloc(1 << 20, 0xff);
      expect(await AioCb.fromMutSlice(fd, 0, buf).read()).toBe(1 << 20);
      expect(buf.every((b) => b === 0)).toBe(true);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('/dev/full: a write fails with ENOSPC and the buffer is unchanged', async () => {
    const fd = fs.openSync('/dev/full', 'w');
    try {
      const buf = bytes(7, 4096);
      const copy = Buffer.from(buf);
      await expect(AioCb.fromSlice(fd, 0, buf).write()).rejects.toMatchObject({ code: 'ENOSPC' });
      expect(buf.equals(copy)).toBe(true);
    } finally {
      fs.closeSync(fd);
    }
  });
});
