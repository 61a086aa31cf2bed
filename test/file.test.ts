// AioFile: open, read, write, sync, datasync, stat, close, fromFd,
// Symbol.asyncDispose, fs-shaped errors, asynchronous settling and
// AsyncLocalStorage, on the file "abcdef123456".
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AioError, AioFile, open } from '../src/index.js';
import { blockingFifo, readAt, tempDir, tempFile, writeAt } from './helpers.js';

const INITIAL = 'abcdef123456';
const { EBADF, EEXIST, ENOENT } = osConstants.errno;

/** Whether a descriptor number is open in this process. */
function isOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch (e) {
    expect(e).toMatchObject({ code: 'EBADF' });
    return false;
  }
}

describe('open', () => {
  it("opens with a string flag ('r' by default) and keeps the path", async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p);
    try {
      expect(file).toBeInstanceOf(AioFile);
      expect(file.path).toBe(p);
      expect(typeof file.fd).toBe('number');
      const buf = Buffer.alloc(4);
      await expect(readAt(file, buf, 2)).resolves.toBe(4);
      expect(buf.toString()).toBe('cdef');
    } finally {
      await file.close();
    }
  });

  it('creates a file with numeric flags and mode', async () => {
    const p = path.join(tempDir(), 'created');
    const { O_RDWR, O_CREAT, O_EXCL } = fs.constants;
    const file = await open(p, O_RDWR | O_CREAT | O_EXCL, 0o600);
    try {
      expect(fs.statSync(p).mode & 0o777).toBe(0o600);
      await expect(writeAt(file, Buffer.from('xyz'), 0)).resolves.toBe(3);
      const back = Buffer.alloc(3);
      await expect(readAt(file, back, 0)).resolves.toBe(3);
      expect(back.toString()).toBe('xyz');
    } finally {
      await file.close();
    }
    expect(fs.readFileSync(p, 'utf8')).toBe('xyz');
    // O_EXCL on a file that exists now.
    await expect(open(p, O_RDWR | O_CREAT | O_EXCL)).rejects.toMatchObject({
      code: 'EEXIST',
      errno: -EEXIST,
      syscall: 'open',
      path: p,
    });
  });

  it("'w' truncates, 'wx' refuses an existing file, 'a' appends whatever the position", async () => {
    const { path: p } = tempFile(INITIAL);
    const w = await open(p, 'w');
    expect(fs.statSync(p).size).toBe(0);
    await expect(writeAt(w, Buffer.from('new'), 0)).resolves.toBe(3);
    await w.close();
    expect(fs.readFileSync(p, 'utf8')).toBe('new');

    await expect(open(p, 'wx')).rejects.toMatchObject({ code: 'EEXIST', path: p });

    const a = await open(p, 'a');
    await expect(writeAt(a, Buffer.from('+one'), 0)).resolves.toBe(4);
    await expect(writeAt(a, Buffer.from('+two'), 1)).resolves.toBe(4);
    await a.close();
    expect(fs.readFileSync(p, 'utf8')).toBe('new+one+two');
  });

  it('accepts a file: URL', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(new URL(`file://${p}`), 'r');
    try {
      expect(file.path).toBe(p);
      const buf = Buffer.alloc(3);
      await expect(readAt(file, buf, 9)).resolves.toBe(3);
      expect(buf.toString()).toBe('456');
    } finally {
      await file.close();
    }
  });

  it('rejects ENOENT with the path for a missing file', async () => {
    const p = path.join(tempDir(), 'missing');
    const err = await open(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ code: 'ENOENT', errno: -ENOENT, syscall: 'open', path: p });
  });

  it('rejects (does not throw) bad flags, mode and options', async () => {
    const { path: p } = tempFile(INITIAL);
    let call: Promise<AioFile> | undefined;
    expect(() => {
      call = open(p, 'bogus');
    }).not.toThrow();
    await expect(call).rejects.toThrow(TypeError);
    await expect(open(p, 'r', -1)).rejects.toThrow(RangeError);
    await expect(open(p, 'r', 0o666, { concurrency: 0 })).rejects.toThrow(RangeError);
    await expect(open(p, 'r', 0o666, 'fast' as never)).rejects.toThrow(TypeError);
  });
});

describe('read and write', () => {
  it('writes bytes and fs.readFileSync sees exactly them', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r+');
    try {
      const data = randomBytes(100_000);
      await expect(writeAt(file, data, 4096)).resolves.toBe(data.length);
      const disk = fs.readFileSync(p);
      expect(disk.length).toBe(4096 + data.length);
      expect(disk.subarray(0, 12).toString()).toBe(INITIAL);
      // The hole between the old end and 4096 reads as zeros.
      expect(disk.subarray(12, 4096).equals(Buffer.alloc(4096 - 12))).toBe(true);
      expect(disk.subarray(4096).equals(data)).toBe(true);

      const back = Buffer.alloc(data.length);
      await expect(readAt(file, back, 4096)).resolves.toBe(data.length);
      expect(back.equals(data)).toBe(true);
    } finally {
      await file.close();
    }
  });

  it('writes from and reads into any ArrayBufferView region', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r+');
    try {
      const src = new DataView(new TextEncoder().encode('..QRS..').buffer, 2, 3);
      await expect(writeAt(file, src, 3)).resolves.toBe(3);
      expect(fs.readFileSync(p, 'utf8')).toBe('abcQRS123456');

      const backing = new Uint8Array(10).fill(0x2e);
      await expect(readAt(file, backing.subarray(2, 8), 1)).resolves.toBe(6);
      expect(Buffer.from(backing).toString()).toBe('..bcQRS1..');

      const words = new Uint16Array(2);
      await expect(readAt(file, words, 8)).resolves.toBe(4);
      expect(Buffer.from(words.buffer).toString()).toBe('3456');
    } finally {
      await file.close();
    }
  });

  it('reads short at the end of the file and 0 at and beyond it', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p);
    try {
      const buf = Buffer.alloc(8, 0x2e);
      await expect(readAt(file, buf, 8)).resolves.toBe(4);
      expect(buf.toString()).toBe('3456....');
      const untouched = Buffer.alloc(4, 0x2e);
      await expect(readAt(file, untouched, 12)).resolves.toBe(0);
      await expect(readAt(file, untouched, 1_000_000)).resolves.toBe(0);
      expect(untouched.toString()).toBe('....');
      await expect(readAt(file, Buffer.alloc(0), 0)).resolves.toBe(0);
    } finally {
      await file.close();
    }
  });

  it('takes bigint positions, including past 4 GiB', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r+');
    try {
      await expect(writeAt(file, Buffer.from('XY'), 5n)).resolves.toBe(2);
      const buf = Buffer.alloc(4);
      await expect(readAt(file, buf, 4n)).resolves.toBe(4);
      expect(buf.toString()).toBe('eXY2');

      // A sparse file: only the last block is allocated.
      const far = 2n ** 32n + 7n;
      await expect(writeAt(file, Buffer.from('far'), far)).resolves.toBe(3);
      const back = Buffer.alloc(3);
      await expect(readAt(file, back, far)).resolves.toBe(3);
      expect(back.toString()).toBe('far');
      const viaFs = Buffer.alloc(3);
      const fd = fs.openSync(p, 'r');
      try {
        expect(fs.readSync(fd, viaFs, 0, 3, Number(far))).toBe(3);
      } finally {
        fs.closeSync(fd);
      }
      expect(viaFs.toString()).toBe('far');
      expect(fs.statSync(p).size).toBe(Number(far) + 3);
    } finally {
      await file.close();
    }
  });
});

describe('sync, datasync and stat', () => {
  it.each(['sync', 'datasync'] as const)('%s resolves with undefined once the data is written', async (method) => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r+');
    try {
      await writeAt(file, Buffer.from('SYNCED'), 0);
      await expect(file[method]()).resolves.toBeUndefined();
      await expect(file[method]({ signal: new AbortController().signal })).resolves.toBeUndefined();
      expect(fs.readFileSync(p, 'utf8')).toBe('SYNCED123456');
    } finally {
      await file.close();
    }
  });

  it('stat() gives the size as it changes', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r+');
    try {
      const st = await file.stat();
      expect(st).toBeInstanceOf(fs.Stats);
      expect(st.isFile()).toBe(true);
      expect(st.size).toBe(12);
      expect(st.ino).toBe(fs.statSync(p).ino);
      await writeAt(file, Buffer.alloc(100, 1), 50);
      expect((await file.stat()).size).toBe(150);
    } finally {
      await file.close();
    }
  });
});

describe('errors have the fs shape', () => {
  it('every operation after close rejects with EBADF and the path', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r+');
    await file.close();
    const err = await readAt(file, Buffer.alloc(1), 0).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AioError);
    // FileHandle names the method in `syscall` once closed.
    expect(err).toMatchObject({ code: 'EBADF', errno: -EBADF, syscall: 'read', path: p });
    expect((err as Error).message).toBe(`EBADF: bad file descriptor, read '${p}'`);
    await expect(writeAt(file, Buffer.from('x'), 0)).rejects.toMatchObject({
      code: 'EBADF',
      syscall: 'write',
      path: p,
    });
    await expect(file.sync()).rejects.toMatchObject({ code: 'EBADF', syscall: 'fsync', path: p });
    await expect(file.datasync()).rejects.toMatchObject({ code: 'EBADF', syscall: 'fdatasync', path: p });
    await expect(file.stat()).rejects.toMatchObject({ code: 'EBADF', path: p });
    expect(fs.readFileSync(p, 'utf8')).toBe(INITIAL);
  });

  it("write on a file opened 'r' rejects EBADF with the path and changes nothing", async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r');
    try {
      const err = await writeAt(file, Buffer.from('XX'), 0).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AioError);
      expect(err).toMatchObject({ code: 'EBADF', errno: -EBADF, syscall: 'aio_write', path: p });
      expect(fs.readFileSync(p, 'utf8')).toBe(INITIAL);
      // The file still works for reads.
      const buf = Buffer.alloc(2);
      await expect(readAt(file, buf, 0)).resolves.toBe(2);
      expect(buf.toString()).toBe('ab');
    } finally {
      await file.close();
    }
  });

  it('an out-of-range reqprio is a RangeError before it reaches libc (was EINVAL from aio_read)', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p);
    try {
      for (const reqprio of [21, 1000, -1, 1.5]) {
        const err = await readAt(file, Buffer.alloc(1), 0, { reqprio }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(RangeError);
        expect(err).toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
      }
      const buf = Buffer.alloc(1);
      await expect(readAt(file, buf, 0, { reqprio: 20 })).resolves.toBe(1);
      expect(buf.toString()).toBe('a');
    } finally {
      await file.close();
    }
  });

  it('a file made with fromFd has no path in its errors', async () => {
    const { fd } = tempFile(INITIAL);
    const file = AioFile.fromFd(fd);
    expect(file.path).toBeUndefined();
    await file.close();
    const err = await readAt(file, Buffer.alloc(1), 0).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EBADF', syscall: 'read' });
    expect((err as AioError).path).toBeUndefined();
  });
});

describe('close', () => {
  it('is idempotent: repeated calls return the same promise and all resolve', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p);
    const fd = file.fd;
    const first = file.close();
    const second = file.close();
    expect(second).toBe(first);
    await expect(Promise.all([first, second])).resolves.toEqual([undefined, undefined]);
    await expect(file.close()).resolves.toBeUndefined();
    await expect(file[Symbol.asyncDispose]()).resolves.toBeUndefined();
    expect(isOpen(fd)).toBe(false);
  });

  it('await using closes the descriptor at the end of the block', async () => {
    const { path: p } = tempFile(INITIAL);
    let fd = -1;
    {
      await using file = await open(p, 'r+');
      fd = file.fd;
      expect(isOpen(fd)).toBe(true);
      await writeAt(file, Buffer.from('USING'), 0);
    }
    expect(() => fs.fstatSync(fd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(fs.readFileSync(p, 'utf8')).toBe('USINGf123456');
  });

  it('await using closes the descriptor when the block throws', async () => {
    const { path: p } = tempFile(INITIAL);
    let fd = -1;
    const boom = new Error('boom');
    await expect(
      (async () => {
        await using file = await open(p);
        fd = file.fd;
        throw boom;
      })(),
    ).rejects.toBe(boom);
    expect(fd).toBeGreaterThanOrEqual(0);
    expect(isOpen(fd)).toBe(false);
  });
});

describe('AioFile.fromFd', () => {
  it('autoClose false (the default) leaves the descriptor open', async () => {
    const { fd, path: p } = tempFile(INITIAL);
    const file = AioFile.fromFd(fd);
    expect(file.fd).toBe(fd);
    await writeAt(file, Buffer.from('FD'), 0);
    await file.close();
    expect(isOpen(fd)).toBe(true);
    const buf = Buffer.alloc(4);
    expect(fs.readSync(fd, buf, 0, 4, 0)).toBe(4);
    expect(buf.toString()).toBe('FDcd');
    expect(fs.readFileSync(p, 'utf8')).toBe('FDcdef123456');
    await expect(readAt(file, Buffer.alloc(1), 0)).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('autoClose true closes the descriptor', async () => {
    const { path: p } = tempFile(INITIAL);
    const fd = fs.openSync(p, 'r');
    const file = AioFile.fromFd(fd, { autoClose: true });
    const buf = Buffer.alloc(3);
    await expect(readAt(file, buf, 0)).resolves.toBe(3);
    expect(buf.toString()).toBe('abc');
    expect(isOpen(fd)).toBe(true);
    await file.close();
    expect(isOpen(fd)).toBe(false);
  });

  it('throws synchronously for a bad descriptor or options', () => {
    expect(() => AioFile.fromFd(-1)).toThrow(RangeError);
    expect(() => AioFile.fromFd(1.5)).toThrow(RangeError);
    expect(() => AioFile.fromFd('3' as never)).toThrow(TypeError);
    const { fd } = tempFile(INITIAL);
    expect(() => AioFile.fromFd(fd, { concurrency: 0 })).toThrow(RangeError);
    expect(() => AioFile.fromFd(fd, { concurrency: 'many' as never })).toThrow(TypeError);
  });
});

describe('priority', () => {
  it('a lower priority request runs after a later one of normal priority', async () => {
    // On the FIFO the first read holds glibc's one slot for the descriptor;
    // glibc orders the requests queued behind it by priority.
    const fifo = blockingFifo();
    const file = AioFile.fromFd(fifo.fd);
    const first = Buffer.alloc(1);
    const low = Buffer.alloc(1);
    const normal = Buffer.alloc(1);
    const reads = [
      readAt(file, first, 0),
      readAt(file, low, 0, { reqprio: 5 }),
      readAt(file, normal, 0, { reqprio: 0 }),
    ];
    fs.writeSync(fifo.fd, 'ABC');
    await expect(Promise.all(reads)).resolves.toEqual([1, 1, 1]);
    expect(first.toString()).toBe('A');
    expect(normal.toString()).toBe('B');
    expect(low.toString()).toBe('C');
    await file.close();
  });

  it('rejects a negative or non-integer priority with a RangeError', async () => {
    const { fd, path: p } = tempFile(INITIAL);
    const file = AioFile.fromFd(fd);
    await expect(readAt(file, Buffer.alloc(1), 0, { reqprio: -1 })).rejects.toThrow(RangeError);
    await expect(writeAt(file, Buffer.alloc(1), 0, { reqprio: 0.5 })).rejects.toThrow(RangeError);
    expect(fs.readFileSync(p, 'utf8')).toBe(INITIAL);
    await file.close();
  });
});

describe('asynchronous settling', () => {
  it('results, failures and validation errors all settle after the calling code', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r');
    const seen: string[] = [];
    let sync = true;
    const settled = [
      readAt(file, Buffer.alloc(2), 0).then((n) => {
        expect(sync).toBe(false);
        seen.push(`read ${n}`);
      }),
      writeAt(file, Buffer.from('x'), 0).catch((e: { code: string }) => {
        expect(sync).toBe(false);
        seen.push(`write ${e.code}`);
      }),
      readAt(file, 'nope' as never, 0).catch((e: Error) => {
        expect(sync).toBe(false);
        seen.push(`invalid ${e.name}`);
      }),
      file.stat().then((st) => {
        expect(sync).toBe(false);
        seen.push(`stat ${st.size}`);
      }),
    ];
    sync = false;
    expect(seen).toEqual([]);
    await Promise.all(settled);
    expect(seen.sort()).toEqual(['invalid TypeError', 'read 2', 'stat 12', 'write EBADF']);

    sync = true;
    const afterClose = file.close().then(() => {
      expect(sync).toBe(false);
      return readAt(file, Buffer.alloc(1), 0);
    });
    const closedRead = readAt(file, Buffer.alloc(1), 0).catch((e: { code: string }) => {
      expect(sync).toBe(false);
      return e.code;
    });
    sync = false;
    await expect(closedRead).resolves.toBe('EBADF');
    await expect(afterClose).rejects.toMatchObject({ code: 'EBADF' });
  });
});

describe('AsyncLocalStorage', () => {
  it('the store of the call is the store after await', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r+');
    const als = new AsyncLocalStorage<{ id: number }>();
    const store = { id: 1 };
    const buf = Buffer.alloc(4);
    const got = await als.run(store, async () => {
      const n = await readAt(file, buf, 0);
      expect(n).toBe(4);
      const afterRead = als.getStore();
      await writeAt(file, Buffer.from('Z'), 0);
      const afterWrite = als.getStore();
      await file.sync();
      return [afterRead, afterWrite, als.getStore()];
    });
    expect(got).toEqual([store, store, store]);
    expect(got[0]).toBe(store);
    expect(als.getStore()).toBeUndefined();
    await file.close();
  });

  it('then-callbacks and rejections keep the store of their call, for many concurrent contexts', async () => {
    const { path: p } = tempFile(INITIAL);
    // Concurrency 2: most of these wait in the queue before they run.
    const file = await open(p, 'r', 0o666, { concurrency: 2 });
    const als = new AsyncLocalStorage<number>();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        als.run(i, () => {
          const buf = Buffer.alloc(1);
          const op = i % 2 === 0 ? readAt(file, buf, i % 12) : writeAt(file, Buffer.from('w'), 0);
          return op.then(
            () => [als.getStore(), buf.toString()],
            (e: { code: string }) => [als.getStore(), e.code],
          );
        }),
      ),
    );
    expect(results).toEqual(
      Array.from({ length: 20 }, (_, i) => [i, i % 2 === 0 ? (INITIAL[i % 12] as string) : 'EBADF']),
    );
    await file.close();
  });
});

describe('validation errors reject, they do not throw', () => {
  // Node's FileHandle rejects the same calls with the same codes
  // (test/filehandle-differential.test.ts compares them with Node itself).
  it.each([
    ['a number for the buffer', 'write', [1], TypeError, 'ERR_INVALID_ARG_TYPE'],
    ['a null buffer', 'write', [null], TypeError, 'ERR_INVALID_ARG_TYPE'],
    ['a number for the options', 'read', [1], TypeError, 'ERR_INVALID_ARG_TYPE'],
    ['a string offset', 'read', [Buffer.alloc(1), 'x'], TypeError, 'ERR_INVALID_ARG_TYPE'],
    ['a negative offset', 'read', [Buffer.alloc(1), -1], RangeError, 'ERR_OUT_OF_RANGE'],
    ['a fractional offset', 'read', [Buffer.alloc(1), 1.5], RangeError, 'ERR_OUT_OF_RANGE'],
    ['a length past the buffer', 'read', [Buffer.alloc(1), 0, 2, 0], RangeError, 'ERR_OUT_OF_RANGE'],
    ['an offset past the buffer', 'write', [Buffer.alloc(1), 2], RangeError, 'ERR_OUT_OF_RANGE'],
    ['a negative length', 'write', [Buffer.alloc(1), 0, -1], RangeError, 'ERR_OUT_OF_RANGE'],
    ['an empty buffer', 'read', [Buffer.alloc(0), 0, 1, 0], TypeError, 'ERR_INVALID_ARG_VALUE'],
    ['a bigint position past 2^63-1', 'write', [Buffer.alloc(1), 0, 1, 2n ** 63n], RangeError, 'ERR_OUT_OF_RANGE'],
    ['a reqprio past AIO_PRIO_DELTA_MAX', 'read', [Buffer.alloc(1), { reqprio: 21 }], RangeError, 'ERR_OUT_OF_RANGE'],
    ['a string reqprio', 'write', [Buffer.alloc(1), { reqprio: '1' }], TypeError, 'ERR_INVALID_ARG_TYPE'],
    [
      'a signal that is not an AbortSignal',
      'read',
      [Buffer.alloc(1), { signal: {} }],
      TypeError,
      'ERR_INVALID_ARG_TYPE',
    ],
  ] as const)('%s (%s)', async (_name, method, callArgs, Err, code) => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r+');
    let result: Promise<unknown> | undefined;
    expect(() => {
      result = (file[method] as (...a: unknown[]) => Promise<unknown>)(...callArgs);
    }).not.toThrow();
    expect(result).toBeInstanceOf(Promise);
    const err = await (result as Promise<unknown>).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Err);
    expect(err).toMatchObject({ code });
    expect(fs.readFileSync(p, 'utf8')).toBe(INITIAL);
    await file.close();
  });

  it('bad options and signals reject', async () => {
    const { path: p } = tempFile(INITIAL);
    const file = await open(p, 'r+');
    await expect(file.read(Buffer.alloc(1), 'fast' as never)).rejects.toThrow(TypeError);
    await expect(writeAt(file, Buffer.alloc(1), 0, { signal: {} as never })).rejects.toThrow(TypeError);
    await expect(file.sync({ signal: 'stop' as never })).rejects.toThrow(TypeError);
    expect(fs.readFileSync(p, 'utf8')).toBe(INITIAL);
    await file.close();
  });
});
