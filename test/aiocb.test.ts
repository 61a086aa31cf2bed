// nix's test_aio.rs, ported: the AioCb constructors, read, write, fsync,
// error and aioReturn, on the file "abcdef123456".
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  AioCancelStat,
  AioCb,
  AioError,
  AioFsyncMode,
  aioSuspend,
  LioOpcode,
  SigevNone,
  SigevSignal,
  SigevThread,
} from '../src/index.js';
import { tempFile } from './helpers.js';

const INITIAL = 'abcdef123456';
const { EINPROGRESS, EINVAL } = osConstants.errno;

/** Busy-polls error() as nix's poll_aio does, yielding to the event loop. */
async function pollAio(cb: AioCb): Promise<number> {
  for (;;) {
    const e = cb.error();
    if (e !== EINPROGRESS) return e;
    await new Promise((r) => setImmediate(r));
  }
}

describe('construction', () => {
  it('fromFd has no buffer and defaults prio 0, SigevThread, LIO_NOP', () => {
    const { fd } = tempFile(INITIAL);
    const cb = AioCb.fromFd(fd);
    expect(cb.fd).toBe(fd);
    expect(cb.nbytes).toBe(0);
    expect(cb.offset).toBe(0);
    expect(cb.priority).toBe(0);
    expect(cb.sigevent).toEqual({ kind: 'thread' });
    expect(cb.lioOpcode).toBe(LioOpcode.LIO_NOP);
    expect(cb.inProgress).toBe(false);
  });

  it('fromMutSlice keeps every field as given', () => {
    const { fd } = tempFile(INITIAL);
    const buf = new Uint8Array(16);
    const cb = AioCb.fromMutSlice(fd, 2n, buf.subarray(4, 12), 1, SigevSignal('SIGUSR2', 7), LioOpcode.LIO_READ);
    expect(cb.offset).toBe(2n);
    expect(cb.nbytes).toBe(8);
    expect(cb.priority).toBe(1);
    expect(cb.sigevent).toEqual({ kind: 'signal', signal: osConstants.signals.SIGUSR2, value: 7 });
    expect(cb.lioOpcode).toBe(LioOpcode.LIO_READ);
  });

  it('fromSlice refuses LIO_READ at construction', () => {
    const { fd } = tempFile(INITIAL);
    expect(() => AioCb.fromSlice(fd, 0, Buffer.from('x'), 0, SigevNone, LioOpcode.LIO_READ)).toThrow(TypeError);
    expect(() => AioCb.fromBoxedSlice(fd, 0, Buffer.from('x'), 0, SigevNone, LioOpcode.LIO_READ)).toThrow(TypeError);
    expect(() => AioCb.fromPtr(fd, 0, new ArrayBuffer(4), 0, 4, 0, SigevNone, LioOpcode.LIO_READ)).toThrow(TypeError);
  });

  it('fromPtr and fromMutPtr bound-check their region', () => {
    const { fd } = tempFile(INITIAL);
    const ab = new ArrayBuffer(8);
    expect(AioCb.fromMutPtr(fd, 0, ab, 4, 4).nbytes).toBe(4);
    expect(() => AioCb.fromMutPtr(fd, 0, ab, 5, 4)).toThrow(RangeError);
    expect(() => AioCb.fromPtr(fd, 0, ab, -1, 4)).toThrow(RangeError);
    expect(() => AioCb.fromPtr(fd, 0, 'nope' as never, 0, 1)).toThrow(TypeError);
  });

  it('shows its fields through util.inspect', () => {
    const { fd } = tempFile(INITIAL);
    const text = inspect(AioCb.fromMutSlice(fd, 3, Buffer.alloc(2)));
    expect(text).toContain('AioCb');
    expect(text).toContain(`fd: ${fd}`);
    expect(text).toContain('offset: 3');
    expect(text).toContain('nbytes: 2');
  });
});

describe('read', () => {
  it('reads 4 bytes at offset 2: cdef', async () => {
    const { fd } = tempFile(INITIAL);
    const buf = Buffer.alloc(4);
    const cb = AioCb.fromMutSlice(fd, 2, buf);
    await expect(cb.read()).resolves.toBe(4);
    expect(buf.toString()).toBe('cdef');
    expect(cb.aioReturn()).toBe(4);
  });

  it('reads into a bigint offset and a SharedArrayBuffer region', async () => {
    const { fd } = tempFile(INITIAL);
    const sab = new SharedArrayBuffer(16);
    const cb = AioCb.fromMutPtr(fd, 6n, sab, 10, 6);
    await expect(cb.read()).resolves.toBe(6);
    expect(Buffer.from(sab, 10, 6).toString()).toBe('123456');
  });

  it('reads short at end of file and 0 beyond it', async () => {
    const { fd } = tempFile(INITIAL);
    const buf = Buffer.alloc(8, 0x2e);
    await expect(AioCb.fromMutSlice(fd, 8, buf).read()).resolves.toBe(4);
    expect(buf.toString()).toBe('3456....');
    await expect(AioCb.fromMutSlice(fd, 100, buf).read()).resolves.toBe(0);
  });

  it('rejects read() on a write-only block with a TypeError and submits nothing', async () => {
    const { fd } = tempFile(INITIAL);
    const cb = AioCb.fromSlice(fd, 0, Buffer.from('xy'));
    await expect(cb.read()).rejects.toThrow(TypeError);
    expect(cb.inProgress).toBe(false);
    expect(() => cb.aioReturn()).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('with SigevNone settles once error() observes completion', async () => {
    const { fd } = tempFile(INITIAL);
    const buf = Buffer.alloc(4);
    const cb = AioCb.fromMutSlice(fd, 2, buf, 0, SigevNone);
    const p = cb.read();
    expect(await pollAio(cb)).toBe(0);
    await expect(p).resolves.toBe(4);
    expect(cb.aioReturn()).toBe(4);
    expect(buf.toString()).toBe('cdef');
  });
});

describe('write', () => {
  it('writes CDEF at 2: abCDEF123456', async () => {
    const { fd, path } = tempFile(INITIAL);
    const cb = AioCb.fromSlice(fd, 2, Buffer.from('CDEF'));
    await expect(cb.write()).resolves.toBe(4);
    expect(cb.aioReturn()).toBe(4);
    expect(fs.readFileSync(path, 'utf8')).toBe('abCDEF123456');
  });

  it('fromBoxedSlice hands the same buffer back after completion', async () => {
    const { fd, path } = tempFile(INITIAL);
    const buf = Buffer.from('CDEF');
    const cb = AioCb.fromBoxedSlice(fd, 2, buf);
    await cb.write();
    expect(cb.boxedMutSlice()).toBeUndefined();
    expect(cb.boxedSlice()).toBe(buf);
    expect(fs.readFileSync(path, 'utf8')).toBe('abCDEF123456');
  });

  it('fromBoxedMutSlice reads and writes its own buffer', async () => {
    const { fd } = tempFile(INITIAL);
    const buf = new Uint8Array(3);
    const cb = AioCb.fromBoxedMutSlice(fd, 9, buf);
    await expect(cb.read()).resolves.toBe(3);
    const back = cb.boxedMutSlice();
    expect(back).toBe(buf);
    expect(Buffer.from(back as Uint8Array).toString()).toBe('456');
  });

  it('appends in submission order with O_APPEND', async () => {
    const { path } = tempFile('');
    const fd = fs.openSync(path, 'a');
    try {
      const parts = ['one,', 'two,', 'three,', 'four'];
      await Promise.all(parts.map((p) => AioCb.fromSlice(fd, 0, Buffer.from(p)).write()));
      expect(fs.readFileSync(path, 'utf8')).toBe('one,two,three,four');
    } finally {
      fs.closeSync(fd);
    }
  });

  it('fromPtr writes exactly the region', async () => {
    const { fd, path } = tempFile(INITIAL);
    const ab = new TextEncoder().encode('..XYZ..').buffer;
    await expect(AioCb.fromPtr(fd, 0, ab, 2, 3).write()).resolves.toBe(3);
    expect(fs.readFileSync(path, 'utf8')).toBe('XYZdef123456');
  });
});

describe('fsync', () => {
  it.each([
    ['O_SYNC', AioFsyncMode.O_SYNC],
    ['O_DSYNC', AioFsyncMode.O_DSYNC],
  ])('completes with %s and returns 0', async (_name, mode) => {
    const { fd, path } = tempFile(INITIAL);
    await AioCb.fromSlice(fd, 0, Buffer.from('Z')).write();
    const cb = AioCb.fromFd(fd);
    await expect(cb.fsync(mode)).resolves.toBe(0);
    expect(cb.aioReturn()).toBe(0);
    expect(fs.readFileSync(path, 'utf8')).toBe('Zbcdef123456');
  });

  it('rejects an unknown mode with a RangeError', async () => {
    const { fd } = tempFile(INITIAL);
    await expect(AioCb.fromFd(fd).fsync(12345 as never)).rejects.toThrow(RangeError);
  });
});

describe('error and aioReturn', () => {
  it('aioReturn gives the result once, then EINVAL', async () => {
    const { fd } = tempFile(INITIAL);
    const cb = AioCb.fromMutSlice(fd, 0, Buffer.alloc(2));
    await cb.read();
    expect(cb.error()).toBe(0);
    expect(cb.aioReturn()).toBe(2);
    expect(() => cb.aioReturn()).toThrow(
      expect.objectContaining({ code: 'EINVAL', errno: -EINVAL, syscall: 'aio_return' }),
    );
  });

  it('a completed block may be submitted again', async () => {
    const { fd } = tempFile(INITIAL);
    const buf = Buffer.alloc(2);
    const cb = AioCb.fromMutSlice(fd, 4, buf);
    await cb.read();
    buf.fill(0);
    await expect(cb.read()).resolves.toBe(2);
    expect(buf.toString()).toBe('ef');
    expect(cb.aioReturn()).toBe(2);
  });

  it('reports EBADF for a descriptor that is not open, with the caller in the stack', async () => {
    const cb = AioCb.fromMutSlice(1_000_000, 0, Buffer.alloc(1));
    async function callerFrame() {
      return await cb.read();
    }
    const err = await callerFrame().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AioError);
    expect(err).toMatchObject({ code: 'EBADF', errno: -osConstants.errno.EBADF, syscall: 'aio_read' });
    expect((err as Error).message).toBe('EBADF: bad file descriptor, aio_read');
    expect((err as Error).stack).toContain('callerFrame');
    expect(cb.error()).toBe(osConstants.errno.EBADF);
    expect(() => cb.aioReturn()).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('reports EBADF for a closed descriptor', async () => {
    const { path } = tempFile(INITIAL);
    const fd = fs.openSync(path, 'r');
    fs.closeSync(fd);
    // Nothing else in this test opens a file, so the number stays unused.
    await expect(AioCb.fromMutSlice(fd, 0, Buffer.alloc(1)).read()).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('reports ENOSPC when writing to /dev/full', async () => {
    const fd = fs.openSync('/dev/full', 'w');
    try {
      await expect(AioCb.fromSlice(fd, 0, Buffer.from('x')).write()).rejects.toMatchObject({
        code: 'ENOSPC',
        syscall: 'aio_write',
      });
    } finally {
      fs.closeSync(fd);
    }
  });

  it('reports EBADF when writing through a read-only descriptor', async () => {
    const { path } = tempFile(INITIAL);
    const fd = fs.openSync(path, 'r');
    try {
      await expect(AioCb.fromSlice(fd, 0, Buffer.from('x')).write()).rejects.toMatchObject({ code: 'EBADF' });
      expect(fs.readFileSync(path, 'utf8')).toBe(INITIAL);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('an out-of-range priority fails with EINVAL at submission', async () => {
    const { fd } = tempFile(INITIAL);
    const cb = AioCb.fromMutSlice(fd, 0, Buffer.alloc(1), 1000);
    await expect(cb.read()).rejects.toMatchObject({ code: 'EINVAL', syscall: 'aio_read' });
    expect(cb.inProgress).toBe(false);
  });
});

describe('notification', () => {
  it('SigevSignal queues the signal to the process on completion', async () => {
    const { fd } = tempFile(INITIAL);
    const got = new Promise<string>((resolve) => process.once('SIGUSR2', resolve));
    const buf = Buffer.alloc(4);
    const cb = AioCb.fromMutSlice(fd, 2, buf, 0, SigevSignal('SIGUSR2'));
    const p = cb.read();
    await expect(got).resolves.toBe('SIGUSR2');
    // The promise settles when completion is observed.
    expect(cb.error()).toBe(0);
    await expect(p).resolves.toBe(4);
    expect(buf.toString()).toBe('cdef');
  });

  it('setSigevNotify changes the notification of an idle block', async () => {
    const { fd } = tempFile(INITIAL);
    const cb = AioCb.fromMutSlice(fd, 0, Buffer.alloc(1), 0, SigevNone);
    cb.setSigevNotify(SigevThread);
    expect(cb.sigevent).toEqual({ kind: 'thread' });
    await expect(cb.read()).resolves.toBe(1);
  });

  it('aioSuspend resolves when a SigevNone read completes', async () => {
    const { fd } = tempFile(INITIAL);
    const buf = Buffer.alloc(6);
    const cb = AioCb.fromMutSlice(fd, 6, buf, 0, SigevNone);
    const p = cb.read();
    await aioSuspend([cb]);
    await expect(p).resolves.toBe(6);
    expect(buf.toString()).toBe('123456');
  });

  it('cancel() on a completed block reports AioAllDone', async () => {
    const { fd } = tempFile(INITIAL);
    const cb = AioCb.fromMutSlice(fd, 0, Buffer.alloc(1));
    await cb.read();
    expect(cb.cancel()).toBe(AioCancelStat.AioAllDone);
    expect(cb.aioReturn()).toBe(1);
  });
});
