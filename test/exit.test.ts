// Process exit with requests in flight, in child processes: process.exit(),
// an uncaught exception and an unhandled rejection end the process with the
// expected code, within a few seconds and without a native crash; and an
// idle addon never keeps the event loop alive.
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { distEntryUrl, tempDir, tempFile } from './helpers.js';

const INITIAL = 'abcdef123456';
const crash = /Assertion|Aborted|Segmentation|terminate called|FATAL ERROR|Sanitizer|core dumped/;
let url = '';

beforeAll(() => {
  url = distEntryUrl();
}, 120_000);

/**
 * Runs `body` as an ES module in a fresh node, with `m` = the package and
 * `fs`; killed after 5 s (then `error` is set and `status` is null).
 */
function runChild(body: string, timeoutMs = 5_000) {
  const script = `
    import fs from 'node:fs';
    import { execFileSync } from 'node:child_process';
    const m = await import(${JSON.stringify(url)});
    ${body}
  `;
  return spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
  });
}

function expectExit(r: ReturnType<typeof runChild>, status: number): void {
  expect(r.error, 'the child did not exit within 5 s').toBeUndefined();
  expect(r.stderr).not.toMatch(crash);
  expect({ signal: r.signal, status: r.status }).toEqual({ signal: null, status });
}

/** Submissions of every kind, none awaited, on the file at `path`. */
function inFlight(path: string): string {
  return `
    const { AioCb, lioListio, LioMode, LioOpcode, aioSuspend, SigevNone, SigevThread, SigevSignal } = m;
    process.on('SIGUSR2', () => {});
    const fds = [0, 1, 2, 3].map(() => fs.openSync(${JSON.stringify(path)}, 'r+'));
    const none = [];
    for (let i = 0; i < 1000; i++) {
      const sigev = [SigevThread, SigevNone, SigevSignal('SIGUSR2')][i % 3];
      const cb = AioCb.fromMutSlice(fds[i % 4], (i * 64) % 65536, Buffer.alloc(64), 0, sigev);
      if (sigev !== SigevThread) none.push(cb);
      cb.read().catch(() => {});
    }
    for (let i = 0; i < 50; i++) {
      AioCb.fromSlice(fds[i % 4], 65536 + i * 16, Buffer.alloc(16, 0x41)).write().catch(() => {});
    }
    const list = Array.from({ length: 64 }, (_, i) =>
      AioCb.fromMutSlice(fds[i % 4], i * 128, Buffer.alloc(128), 0, SigevThread, LioOpcode.LIO_READ));
    lioListio(LioMode.LIO_NOWAIT, list).forEach((p) => p.catch(() => {}));
    aioSuspend(none).catch(() => {});
  `;
}

/** A read blocked on a FIFO nobody writes: glibc can neither finish nor cancel it. */
function blockedRead(dir: string): string {
  return `
    execFileSync('mkfifo', [${JSON.stringify(`${dir}/fifo`)}]);
    const fifo = fs.openSync(${JSON.stringify(`${dir}/fifo`)}, 'r+');
    m.AioCb.fromMutSlice(fifo, 0, Buffer.alloc(4)).read().catch(() => {});
    m.AioCb.fromMutSlice(fifo, 0, Buffer.alloc(4)).read().catch(() => {});
    const want = '0 0x' + fifo.toString(16) + ' ';
    while (!fs.readdirSync('/proc/self/task').some((t) => {
      try { return fs.readFileSync('/proc/self/task/' + t + '/syscall', 'utf8').startsWith(want); } catch { return false; }
    })) await new Promise((r) => setTimeout(r, 1));
  `;
}

function bigFile(): string {
  return tempFile(Buffer.alloc(65536 + 1024, 0x2e)).path;
}

describe('process.exit(3) with requests in flight', () => {
  it('reads, writes, a list and a suspend in flight: exit code 3', () => {
    const r = runChild(`${inFlight(bigFile())} process.exit(3);`);
    expectExit(r, 3);
    expect(r.stderr).toBe('');
  });

  it('after a tick, with completions being delivered: exit code 3', () => {
    const r = runChild(`${inFlight(bigFile())} await new Promise((r) => setImmediate(r)); process.exit(3);`);
    expectExit(r, 3);
    expect(r.stderr).toBe('');
  });

  it('with a read blocked on a FIFO and one queued behind it: exit code 3', () => {
    const r = runChild(`${blockedRead(tempDir())} process.exit(3);`);
    expectExit(r, 3);
    expect(r.stderr).toBe('');
  });

  it('from a process whose Worker has requests in flight: exit code 3', () => {
    const path = bigFile();
    const src = `
      (async () => {
        const { parentPort } = await import('node:worker_threads');
        const { default: fs } = await import('node:fs');
        const m = await import(${JSON.stringify(url)});
        const fd = fs.openSync(${JSON.stringify(path)}, 'r');
        for (let i = 0; i < 1000; i++) m.AioCb.fromMutSlice(fd, i * 64, Buffer.alloc(64)).read().catch(() => {});
        parentPort.postMessage('submitted');
        for (;;) await m.AioCb.fromMutSlice(fd, 0, Buffer.alloc(512)).read();
      })();
    `;
    const r = runChild(`
      const { Worker } = await import('node:worker_threads');
      const w = new Worker(${JSON.stringify(src)}, { eval: true });
      await new Promise((resolve) => w.once('message', resolve));
      ${inFlight(path)}
      process.exit(3);
    `);
    expectExit(r, 3);
    expect(r.stderr).toBe('');
  });
});

describe('an uncaught error with requests in flight', () => {
  it('a thrown error: exit code 1, the error on stderr', () => {
    const r = runChild(`${inFlight(bigFile())} throw new Error('boom with requests in flight');`);
    expectExit(r, 1);
    expect(r.stderr).toContain('boom with requests in flight');
  });

  it('thrown from a timer after completions started arriving: exit code 1', () => {
    const r = runChild(`${inFlight(bigFile())} setTimeout(() => { throw new Error('late boom'); }, 1);`);
    expectExit(r, 1);
    expect(r.stderr).toContain('late boom');
  });

  it('with a read blocked on a FIFO: exit code 1', () => {
    const r = runChild(`${blockedRead(tempDir())} throw new Error('boom while blocked');`);
    expectExit(r, 1);
    expect(r.stderr).toContain('boom while blocked');
  });

  it('an unhandled AioError rejection: exit code 1, the error on stderr', () => {
    const r = runChild(`
      ${inFlight(bigFile())}
      m.AioCb.fromMutSlice(1000000, 0, Buffer.alloc(1)).read();
    `);
    expectExit(r, 1);
    expect(r.stderr).toContain('EBADF: bad file descriptor, aio_read');
  });
});

describe('an idle addon does not keep the event loop alive', () => {
  function expectExitsOnItsOwn(body: string): string {
    const r = runChild(body);
    expectExit(r, 0);
    expect(r.stderr).toBe('');
    return r.stdout.trim();
  }

  it('after thread-notified reads and writes completed', () => {
    const { path } = tempFile(INITIAL);
    const out = expectExitsOnItsOwn(`
      const fd = fs.openSync(${JSON.stringify(path)}, 'r+');
      const buf = Buffer.alloc(4);
      const n = await m.AioCb.fromMutSlice(fd, 2, buf).read();
      const w = await m.AioCb.fromSlice(fd, 8, Buffer.from('WXYZ')).write();
      const bufs = [0, 1, 2].map(() => Buffer.alloc(4));
      const ns = await Promise.all(bufs.map((b, i) => m.AioCb.fromMutSlice(fd, i * 4, b).read()));
      console.log(n, buf.toString(), w, ns.join(','), bufs.map(String).join(''));
    `);
    expect(out).toBe('4 cdef 4 4,4,4 abcdef12WXYZ');
  });

  it('after SigevNone and SigevSignal reads observed through aioSuspend, a list and an fsync', () => {
    const { path } = tempFile(INITIAL);
    const out = expectExitsOnItsOwn(`
      process.on('SIGUSR2', () => {});
      const fd = fs.openSync(${JSON.stringify(path)}, 'r+');
      const a = Buffer.alloc(3);
      const b = Buffer.alloc(3);
      const ca = m.AioCb.fromMutSlice(fd, 0, a, 0, m.SigevNone);
      const cb = m.AioCb.fromMutSlice(fd, 9, b, 0, m.SigevSignal('SIGUSR2'));
      const ps = [ca.read(), cb.read()];
      while (ca.inProgress || cb.inProgress) await m.aioSuspend([ca, cb]);
      const rs = await Promise.all(ps);
      const l = Buffer.alloc(2);
      const lr = await Promise.all(m.lioListio(m.LioMode.LIO_NOWAIT, [
        m.AioCb.fromMutSlice(fd, 4, l, 0, m.SigevThread, m.LioOpcode.LIO_READ),
      ]));
      const f = await m.AioCb.fromFd(fd).fsync(m.AioFsyncMode.O_SYNC);
      console.log(rs.join(','), a.toString(), b.toString(), lr.join(','), l.toString(), f);
    `);
    expect(out).toBe('3,3 abc 456 2 ef 0');
  });

  it('after an aioSuspend timed out and a queued read was cancelled', () => {
    const dir = tempDir();
    const out = expectExitsOnItsOwn(`
      execFileSync('mkfifo', [${JSON.stringify(`${dir}/fifo`)}]);
      const fifo = fs.openSync(${JSON.stringify(`${dir}/fifo`)}, 'r+');
      const running = m.AioCb.fromMutSlice(fifo, 0, Buffer.alloc(2));
      const p1 = running.read();
      const qbuf = Buffer.alloc(2, 0x2e);
      const queued = m.AioCb.fromMutSlice(fifo, 0, qbuf);
      const p2 = queued.read().catch((e) => e.code);
      const timeout = await m.aioSuspend([running], 20).catch((e) => e.code);
      const stat = queued.cancel() === m.AioCancelStat.AioCanceled ? 'canceled' : 'not canceled';
      fs.writeSync(fifo, 'ok');
      const buf = Buffer.alloc(2);
      console.log(timeout, stat, await p2, qbuf.toString(), await p1);
      fs.closeSync(fifo);
    `);
    expect(out).toBe('EAGAIN canceled ECANCELED .. 2');
  });

  it('after a failed operation', () => {
    const out = expectExitsOnItsOwn(`
      const err = await m.AioCb.fromMutSlice(1000000, 0, Buffer.alloc(1)).read().catch((e) => e.code);
      console.log(err);
    `);
    expect(out).toBe('EBADF');
  });

  it('when only loaded', () => {
    expect(expectExitsOnItsOwn(`console.log(typeof m.AioCb);`)).toBe('function');
  });
});

describe('aioInit', () => {
  function expectExitsOnItsOwn(body: string): string {
    const r = runChild(body);
    expectExit(r, 0);
    expect(r.stderr).toBe('');
    return r.stdout.trim();
  }

  // glibc's pool limited to one thread (aio_init, before the first request):
  // thread-notified reads must still complete, one after another, and the
  // process then exits on its own.
  it('with { threads: 1 }, sequential thread-notified reads complete and the process exits', () => {
    const { path } = tempFile(INITIAL);
    const out = expectExitsOnItsOwn(`
      m.aioInit({ threads: 1, num: 4 });
      const fd = fs.openSync(${JSON.stringify(path)}, 'r');
      let text = '';
      for (let i = 0; i < 12; i += 3) {
        const buf = Buffer.alloc(3);
        await m.AioCb.fromMutSlice(fd, i, buf).read();
        text += buf.toString();
      }
      console.log(text);
    `);
    expect(out).toBe(INITIAL);
  });
});
