// The addon in worker_threads: each Worker loads its own instance (context
// aware), does real I/O, and can be terminated with requests in flight
// without crashing or hanging. Workers load the built package (dist), since
// they cannot run the TypeScript sources.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';
import { AioCb } from '../src/index.js';
import { distEntryUrl, tempDir, tempFile } from './helpers.js';

const INITIAL = 'abcdef123456';
let url = '';

beforeAll(() => {
  url = distEntryUrl();
}, 120_000);

/**
 * Source of a Worker running `body` (plain JavaScript, inside an async
 * function) with `m` = the package, `data` = workerData (which carries the
 * package's `url`) and `post` = parentPort.postMessage.
 */
function workerSource(body: string): string {
  // Written to run both as a script and as a module (a Worker started from
  // an --input-type=module process evaluates its code as a module).
  return `
    (async () => {
      const { parentPort, workerData } = await import('node:worker_threads');
      const { default: fs } = await import('node:fs');
      const post = (v) => parentPort.postMessage(v);
      try {
        const m = await import(workerData.url);
        const data = workerData;
        ${body}
      } catch (e) {
        post({ error: String((e && e.stack) || e) });
      }
    })();
  `;
}

function worker(body: string, data: Record<string, unknown> = {}): Worker {
  return new Worker(workerSource(body), { eval: true, workerData: { ...data, url } });
}

/** The first message, or the worker's error; fails on an 'error' event or an early exit. */
function nextMessage<T>(w: Worker): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cleanup = () => {
      w.off('message', onMessage);
      w.off('error', reject);
      w.off('exit', onExit);
    };
    const onMessage = (m: unknown) => {
      cleanup();
      if (m !== null && typeof m === 'object' && 'error' in m) reject(new Error(String(m.error)));
      else resolve(m as T);
    };
    const onExit = (code: number) => {
      cleanup();
      reject(new Error(`worker exited with ${code} before posting`));
    };
    w.on('message', onMessage);
    w.on('error', reject);
    w.on('exit', onExit);
  });
}

function exitCode(w: Worker): Promise<number> {
  return new Promise((resolve) => w.once('exit', resolve));
}

describe('a Worker', () => {
  it('loads the addon and reads, writes, lists, suspends and cancels', async () => {
    const { path } = tempFile(INITIAL);
    const w = worker(
      `
      const { AioCb, lioListio, LioMode, LioOpcode, aioSuspend, SigevNone, AioCancelStat } = m;
      const fd = fs.openSync(data.path, 'r+');
      const out = {};
      const rbuf = Buffer.alloc(4);
      out.read = [await AioCb.fromMutSlice(fd, 2, rbuf).read(), rbuf.toString()];
      out.write = await AioCb.fromSlice(fd, 2, Buffer.from('CDEF')).write();
      const lbuf = Buffer.alloc(4);
      const ps = lioListio(LioMode.LIO_WAIT, [
        AioCb.fromMutSlice(fd, 8, lbuf, 0, SigevNone, LioOpcode.LIO_READ),
        AioCb.fromSlice(fd, 0, Buffer.from('AB'), 0, SigevNone, LioOpcode.LIO_WRITE),
      ]);
      out.lio = [await Promise.all(ps), lbuf.toString()];
      const sbuf = Buffer.alloc(3);
      const scb = AioCb.fromMutSlice(fd, 2, sbuf, 0, SigevNone);
      const sp = scb.read();
      while (scb.inProgress) await aioSuspend([scb]);
      out.suspend = [await sp, sbuf.toString()];
      out.cancelDone = scb.cancel() === AioCancelStat.AioAllDone;
      fs.closeSync(fd);
      post(out);
    `,
      { path },
    );
    const exited = exitCode(w);
    const out = await nextMessage<Record<string, unknown>>(w);
    expect(out).toEqual({
      read: [4, 'cdef'],
      write: 4,
      lio: [[4, 2], '3456'],
      suspend: [3, 'CDE'],
      cancelDone: true,
    });
    expect(fs.readFileSync(path, 'utf8')).toBe('ABCDEF123456');
    // Idle, the addon does not keep the Worker alive: it ends on its own.
    await expect(exited).resolves.toBe(0);
  });

  it('several Workers and the main thread do I/O at the same time', async () => {
    const size = 4096;
    const { path, fd } = tempFile(Buffer.alloc(size * 5, 0x2e));
    const workers = [1, 2, 3, 4].map((k) =>
      worker(
        `
        const fd = fs.openSync(data.path, 'r+');
        const chunk = Buffer.alloc(${size}, 0x40 + data.k);
        const writes = [];
        for (let i = 0; i < ${size}; i += 256) {
          writes.push(m.AioCb.fromSlice(fd, data.k * ${size} + i, chunk.subarray(i, i + 256)).write());
        }
        const n = (await Promise.all(writes)).reduce((a, b) => a + b, 0);
        const back = Buffer.alloc(${size});
        await m.AioCb.fromMutSlice(fd, data.k * ${size}, back).read();
        fs.closeSync(fd);
        post({ n, ok: back.equals(chunk) });
      `,
        { path, k },
      ),
    );
    const exits = workers.map(exitCode);
    const mine = Buffer.alloc(size, 0x40);
    const mainWrites = [];
    for (let i = 0; i < size; i += 256) mainWrites.push(AioCb.fromSlice(fd, i, mine.subarray(i, i + 256)).write());
    const results = await Promise.all(workers.map((w) => nextMessage<{ n: number; ok: boolean }>(w)));
    await Promise.all(mainWrites);
    expect(results).toEqual([1, 2, 3, 4].map(() => ({ n: size, ok: true })));
    const file = fs.readFileSync(path);
    for (let k = 0; k < 5; k++) {
      expect(file.subarray(k * size, (k + 1) * size).equals(Buffer.alloc(size, 0x40 + k))).toBe(true);
    }
    await expect(Promise.all(exits)).resolves.toEqual([0, 0, 0, 0]);
  });
});

// Tearing a Worker down with requests in flight runs in a child process, so
// that a crash (an abort in native code) is reported as this test's failure
// with the child's stderr, not as the death of the whole test file.
describe('a Worker torn down with requests in flight', () => {
  const crash = /Assertion|Aborted|Segmentation|terminate called|FATAL ERROR|Sanitizer/;

  /** Runs an ES module script in a fresh node; its last stdout line is JSON. */
  function runChild(script: string, timeoutMs = 60_000) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    const lines = r.stdout.trim().split('\n');
    return { ...r, result: lines.length > 0 && lines.at(-1) !== '' ? JSON.parse(lines.at(-1) as string) : undefined };
  }

  function expectClean(r: ReturnType<typeof runChild>): void {
    expect(r.error, 'the child timed out').toBeUndefined();
    expect(r.stderr).not.toMatch(crash);
    expect({ signal: r.signal, status: r.status, stderr: r.stderr }).toEqual({ signal: null, status: 0, stderr: '' });
  }

  it('terminated with ~1000 reads in flight, 20 times in a row: no crash, terminate resolves', () => {
    const contents = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => (i * 13 + 5) & 0xff));
    const { path } = tempFile(contents);
    const src = workerSource(`
      const { AioCb, lioListio, LioMode, LioOpcode, aioSuspend, SigevNone, SigevThread } = m;
      const fds = [0, 1, 2, 3].map(() => fs.openSync(data.path, 'r'));
      const none = [];
      for (let i = 0; i < 1000; i++) {
        const kind = (i + data.round) % 3;
        const cb = AioCb.fromMutSlice(fds[i % 4], (i * 64) % 65536, Buffer.alloc(64), 0, kind === 0 ? SigevNone : SigevThread);
        if (kind === 0) none.push(cb);
        cb.read().catch(() => {});
      }
      const list = Array.from({ length: 64 }, (_, i) =>
        AioCb.fromMutSlice(fds[i % 4], i * 128, Buffer.alloc(128), 0, SigevThread, LioOpcode.LIO_READ));
      lioListio(LioMode.LIO_NOWAIT, list).forEach((p) => p.catch(() => {}));
      aioSuspend(none).catch(() => {});
      post('submitted');
      // Keep submitting until terminated.
      for (;;) await AioCb.fromMutSlice(fds[0], 0, Buffer.alloc(512)).read();
    `);
    const r = runChild(`
      import fs from 'node:fs';
      import { Worker } from 'node:worker_threads';
      const url = ${JSON.stringify(url)};
      const codes = [];
      for (let round = 0; round < 20; round++) {
        const w = new Worker(${JSON.stringify(src)}, { eval: true, workerData: { url, path: ${JSON.stringify(path)}, round } });
        const m = await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
        if (m !== 'submitted') throw new Error(JSON.stringify(m));
        codes.push(await w.terminate());
      }
      // The main thread's own instance still works.
      const { AioCb } = await import(url);
      const fd = fs.openSync(${JSON.stringify(path)}, 'r');
      const buf = Buffer.alloc(100);
      const n = await AioCb.fromMutSlice(fd, 1000, buf).read();
      console.log(JSON.stringify({ codes, n, bytes: buf.toString('hex') }));
    `);
    expectClean(r);
    expect(r.result).toEqual({
      codes: Array(20).fill(1),
      n: 100,
      bytes: contents.subarray(1000, 1100).toString('hex'),
    });
  });

  it('terminated while its read blocks on a FIFO: terminate resolves and the process carries on', () => {
    const dir = tempDir();
    const src = workerSource(`
      m.AioCb.fromMutPtr(data.fd, 0, data.sab, 0, 4).read().catch(() => {});
      post('submitted');
    `);
    const r = runChild(`
      import { execFileSync } from 'node:child_process';
      import fs from 'node:fs';
      import { Worker } from 'node:worker_threads';
      const url = ${JSON.stringify(url)};
      execFileSync('mkfifo', [${JSON.stringify(`${dir}/fifo`)}]);
      const fd = fs.openSync(${JSON.stringify(`${dir}/fifo`)}, 'r+');
      // A SharedArrayBuffer outlives the Worker; even so the orphaned read
      // lands only in its request's own memory (a FIFO read goes through
      // it, native/request.h UseBounce): the SharedArrayBuffer stays as it
      // was, and 'WXYZ' is consumed by the read of the environment that
      // is gone.
      const sab = new SharedArrayBuffer(4);
      const w = new Worker(${JSON.stringify(src)}, { eval: true, workerData: { url, fd, sab } });
      await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
      // Wait until glibc's worker thread is blocked reading the FIFO.
      const want = '0 0x' + fd.toString(16) + ' ';
      while (!fs.readdirSync('/proc/self/task').some((t) => {
        try { return fs.readFileSync('/proc/self/task/' + t + '/syscall', 'utf8').startsWith(want); } catch { return false; }
      })) await new Promise((r) => setTimeout(r, 1));
      const code = await w.terminate();
      fs.writeSync(fd, 'WXYZ');
      const { AioCb } = await import(url);
      const buf = Buffer.alloc(2);
      const p = AioCb.fromMutSlice(fd, 0, buf).read();
      fs.writeSync(fd, 'ok');
      const n = await p;
      console.log(JSON.stringify({ code, n, buf: buf.toString(), sab: Buffer.from(sab).toString() }));
    `);
    expectClean(r);
    expect(r.result).toEqual({ code: 1, n: 2, buf: 'ok', sab: '\0\0\0\0' });
  });

  it('process.exit() inside the Worker with requests in flight, 20 times', () => {
    const { path } = tempFile(Buffer.alloc(65536, 0x61));
    const src = workerSource(`
      const fd = fs.openSync(data.path, 'r');
      for (let i = 0; i < 500; i++) m.AioCb.fromMutSlice(fd, i * 128, Buffer.alloc(128)).read().catch(() => {});
      await new Promise((r) => setImmediate(r));
      process.exit(7);
    `);
    const r = runChild(`
      import { Worker } from 'node:worker_threads';
      const codes = [];
      for (let round = 0; round < 20; round++) {
        const w = new Worker(${JSON.stringify(src)}, { eval: true, workerData: { url: ${JSON.stringify(url)}, path: ${JSON.stringify(path)} } });
        codes.push(await new Promise((resolve) => w.once('exit', resolve)));
      }
      console.log(JSON.stringify(codes));
    `);
    expectClean(r);
    expect(r.result).toEqual(Array(20).fill(7));
  });
});
