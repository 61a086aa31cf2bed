// Memory-safety smoke test for `npm run test:valgrind`: a few thousand
// operations of each kind through the built package (dist/), in plain Node,
// checked for correctness as they go. run.sh runs it under valgrind, which
// fails the run on any invalid read or write in the addon or libc and on
// definite leaks. Also runs without valgrind: `node --expose-gc test/valgrind/smoke.mjs`.
// SMOKE_ONLY=cb,worker runs only the named sections; SMOKE_N scales the counts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';

const entry = new URL('../../dist/index.js', import.meta.url);
const {
  AbortError,
  AioCancelStat,
  AioCb,
  AioFsyncMode,
  LioMode,
  LioOpcode,
  SigevNone,
  SigevSignal,
  aioCancelAll,
  aioSuspend,
  alignedBuffer,
  completions,
  lioListio,
  open,
} = await import(entry);

const N = Number(process.env.SMOKE_N ?? 2000);
const BLOCK = 512;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posix-aio-valgrind-'));
const dataPath = path.join(dir, 'data');
const started = Date.now();
const only = process.env.SMOKE_ONLY?.split(',');
const counts = {};
const count = (kind, n = 1) => {
  counts[kind] = (counts[kind] ?? 0) + n;
};

/** Bytes unique to (tag, i). */
function block(tag, i, size = BLOCK) {
  const b = Buffer.alloc(size);
  for (let k = 0; k < size; k += 4) b.writeUInt32LE(((tag * 2654435761) ^ (i * 40503 + k)) >>> 0, k);
  return b;
}

function fifo(name) {
  const p = path.join(dir, name);
  execFileSync('mkfifo', [p]);
  return fs.openSync(p, 'r+');
}

async function waitUntilReading(fd) {
  const want = `0 0x${fd.toString(16)} `;
  for (let i = 0; i < 100_000; i++) {
    for (const tid of fs.readdirSync('/proc/self/task')) {
      try {
        if (fs.readFileSync(`/proc/self/task/${tid}/syscall`, 'utf8').startsWith(want)) return;
      } catch {}
    }
    await sleep(2);
  }
  throw new Error(`no thread reads fd ${fd}`);
}

async function section(name, fn) {
  if (only === undefined || only.includes(name)) await fn();
}

try {
  fs.writeFileSync(dataPath, Buffer.alloc(N * BLOCK));
  const fd = fs.openSync(dataPath, 'r+');

  // AioCb writes and reads (SigevThread), every block checked.
  await section('cb', async () => {
    const written = await Promise.all(
      Array.from({ length: N }, (_, i) => AioCb.fromSlice(fd, i * BLOCK, block(1, i)).write()),
    );
    for (const n of written) assert.equal(n, BLOCK);
    count('aio_write', N);
    const bufs = Array.from({ length: N }, () => Buffer.alloc(BLOCK));
    await Promise.all(bufs.map((b, i) => AioCb.fromMutSlice(fd, i * BLOCK, b).read()));
    for (const [i, b] of bufs.entries()) assert.ok(b.equals(block(1, i)), `read ${i}`);
    count('aio_read', N);
  });

  // fsync in both modes.
  await section('fsync', async () => {
    for (let i = 0; i < N / 4; i++) {
      await Promise.all([AioCb.fromFd(fd).fsync(AioFsyncMode.O_DSYNC), AioCb.fromFd(fd).fsync(AioFsyncMode.O_SYNC)]);
    }
    count('aio_fsync', N / 2);
  });

  // lio_listio, both modes, mixed reads and writes.
  await section('lio', async () => {
    for (let at = 0; at < N; at += 16) {
      const list = [];
      for (let i = at; i < at + 16 && i < N; i++) {
        list.push(AioCb.fromSlice(fd, i * BLOCK, block(2, i), 0, undefined, LioOpcode.LIO_WRITE));
      }
      await Promise.all(lioListio(LioMode.LIO_NOWAIT, list));
      const reads = list.map((_, k) =>
        AioCb.fromMutSlice(fd, (at + k) * BLOCK, Buffer.alloc(BLOCK), 0, SigevNone, LioOpcode.LIO_READ),
      );
      lioListio(LioMode.LIO_WAIT, reads);
      reads.forEach((cb, k) => {
        assert.equal(cb.aioReturn(), BLOCK);
        assert.ok(cb.buffer().equals(block(2, at + k)));
      });
    }
    count('lio_listio entries', 2 * N);
  });

  // aio_suspend over SigevNone blocks, and completions().
  await section('suspend', async () => {
    for (let at = 0; at < N; at += 8) {
      const cbs = Array.from({ length: 8 }, (_, k) =>
        AioCb.fromMutSlice(fd, ((at + k) % N) * BLOCK, Buffer.alloc(BLOCK), 0, SigevNone),
      );
      const ps = cbs.map((cb) => cb.read());
      while (cbs.some((cb) => cb.inProgress)) await aioSuspend(cbs, 10_000);
      await Promise.all(ps);
    }
    count('aio_suspend', N / 8);
    const cbs = Array.from({ length: 256 }, (_, i) => AioCb.fromMutSlice(fd, i * BLOCK, Buffer.alloc(BLOCK)));
    for (const cb of cbs) cb.read();
    let seen = 0;
    for await (const cb of completions(cbs)) {
      assert.equal(cb.aioReturn(), BLOCK);
      seen++;
    }
    assert.equal(seen, 256);
    count('completions', 256);
  });

  // aio_suspend timing out on a FIFO nobody writes.
  await section('timeout', async () => {
    const f1 = fifo('suspend');
    const stuck = AioCb.fromMutSlice(f1, 0, Buffer.alloc(1), 0, SigevNone);
    const stuckP = stuck.read();
    for (let i = 0; i < 20; i++) await assert.rejects(aioSuspend([stuck], 1), { code: 'EAGAIN' });
    fs.writeSync(f1, 'x');
    assert.equal(
      await (async () => {
        await aioSuspend([stuck]);
        return stuckP;
      })(),
      1,
    );
    fs.closeSync(f1);
    count('aio_suspend timeouts', 20);
  });

  // Cancellation: reads queued behind a FIFO read libc is running.
  await section('cancel', async () => {
    const f2 = fifo('cancel');
    for (let round = 0; round < N / 100; round++) {
      const head = AioCb.fromMutSlice(f2, 0, Buffer.alloc(1));
      const headP = head.read();
      await waitUntilReading(f2);
      const queued = Array.from({ length: 100 }, () => AioCb.fromMutSlice(f2, 0, Buffer.alloc(8)));
      const qs = queued.map((cb) => cb.read().catch((e) => e.code));
      await sleep(1);
      assert.equal(head.cancel(), AioCancelStat.AioNotCanceled);
      for (const cb of queued.slice(0, 50)) assert.equal(cb.cancel(), AioCancelStat.AioCanceled);
      assert.equal(aioCancelAll(f2), AioCancelStat.AioNotCanceled);
      fs.writeSync(f2, 'y');
      assert.equal(await headP, 1);
      for (const r of await Promise.all(qs)) assert.equal(r, 'ECANCELED');
    }
    fs.closeSync(f2);
    count('aio_cancel', N);
  });

  // SigevSignal.
  await section('signal', async () => {
    let signals = 0;
    const onSignal = () => signals++;
    process.on('SIGUSR2', onSignal);
    for (let i = 0; i < 50; i++) {
      const cb = AioCb.fromSlice(fd, i * BLOCK, block(3, i), 0, SigevSignal('SIGUSR2', i));
      const p = cb.write();
      while (cb.inProgress) await aioSuspend([cb], 10_000);
      assert.equal(await p, BLOCK);
    }
    await sleep(50);
    process.off('SIGUSR2', onSignal);
    assert.ok(signals > 0);
    count('SigevSignal', 50);
  });

  // AioFile: read, write, batch, chunks, AbortSignal, close while busy.
  await section('file', async () => {
    const file = await open(dataPath, 'r+', 0o666, { concurrency: 16 });
    await Promise.all(Array.from({ length: N }, (_, i) => file.write(block(4, i), 0, BLOCK, i * BLOCK)));
    const fb = Array.from({ length: N }, () => Buffer.alloc(BLOCK));
    await Promise.all(fb.map((b, i) => file.read(b, 0, BLOCK, i * BLOCK)));
    for (const [i, b] of fb.entries()) assert.ok(b.equals(block(4, i)));
    count('file.read/write', 2 * N);
    for (let at = 0; at < N; at += 20) {
      const ops = [];
      for (let i = at; i < at + 20; i++) {
        ops.push({ op: 'write', buffer: block(5, i), position: i * BLOCK });
        ops.push({ op: 'read', buffer: Buffer.alloc(BLOCK), position: i * BLOCK });
      }
      const rs = await Promise.all(file.batch(ops));
      for (const n of rs) assert.equal(n, BLOCK);
      for (let k = 1; k < ops.length; k += 2) assert.ok(ops[k].buffer.equals(ops[k - 1].buffer));
    }
    count('file.batch entries', 2 * N);
    let total = 0;
    for await (const chunk of file.readChunks({ chunkSize: 8 * BLOCK, depth: 8 })) total += chunk.length;
    assert.equal(total, N * BLOCK);
    const partial = file.readChunks({ chunkSize: BLOCK, depth: 8 });
    for (let i = 0; i < 10; i++) await partial.next();
    await partial.return();
    count('readChunks', N / 8 + 10);
    const copy = await open(path.join(dir, 'copy'), 'w+');
    assert.equal(await copy.writeChunks(file.readChunks({ chunkSize: 4 * BLOCK })), N * BLOCK);
    await copy.close();
    assert.ok(fs.readFileSync(path.join(dir, 'copy')).equals(fs.readFileSync(dataPath)));
    count('writeChunks', N / 4);
    let aborted = 0;
    await Promise.all(
      Array.from({ length: N }, (_, i) => {
        const ac = new AbortController();
        const b = Buffer.alloc(BLOCK);
        // nowait: false keeps every read on AIO (a cached read would
        // complete inline before the abort below).
        const p = file.read(b, { position: i * BLOCK, signal: ac.signal, nowait: false }).then(
          ({ bytesRead }) => {
            assert.equal(bytesRead, BLOCK);
            assert.ok(b.equals(block(5, i)));
          },
          (e) => {
            assert.ok(e instanceof AbortError);
            aborted++;
          },
        );
        // Every other one, at once: still queued (AbortError) or already
        // running in libc (completes).
        if (i % 2 === 0) ac.abort();
        return p;
      }),
    );
    assert.ok(aborted > 0);
    count('AbortSignal', N);
    const aligned = alignedBuffer(4096);
    await file.read(aligned, 0, aligned.length, 0);
    const busy = Array.from({ length: 64 }, (_, i) =>
      file.write(block(6, i), 0, BLOCK, i * BLOCK).then(
        (r) => r.bytesWritten,
        (e) => e.code,
      ),
    );
    await file.close();
    for (const r of await Promise.all(busy)) assert.ok(r === BLOCK || r === 'ECANCELED');
    count('close while busy', 64);
  });

  // AioCbs dropped in flight and collected.
  await section('gc', async () => {
    if (typeof globalThis.gc === 'function') {
      for (let round = 0; round < N / 200; round++) {
        for (let i = 0; i < 200; i++) {
          AioCb.fromMutSlice(fd, i * BLOCK, Buffer.alloc(BLOCK), 0, SigevNone).read();
        }
        globalThis.gc();
        await sleep(1);
      }
      // One request behind them all: once it completes, they have.
      await AioCb.fromMutSlice(fd, 0, Buffer.alloc(1)).read();
      globalThis.gc();
      await sleep(10);
      count('dropped in flight', N);
    }
  });

  // A Worker with requests in flight, terminated.
  await section('worker', async () => {
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       import(workerData.entry).then(({ AioCb }) => {
         for (let i = 0; i < 200; i++) AioCb.fromMutSlice(workerData.fd, i * 512, Buffer.alloc(512)).read();
         parentPort.postMessage('go');
       });`,
      { eval: true, workerData: { entry: entry.href, fd } },
    );
    await new Promise((resolve) => worker.once('message', resolve));
    await worker.terminate();
    count('worker teardown', 1);
  });

  fs.closeSync(fd);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log(`smoke: ok in ${((Date.now() - started) / 1000).toFixed(1)} s`, JSON.stringify(counts));
