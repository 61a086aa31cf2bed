// Lifecycle reliability (issue 5): Workers terminated with writes in flight,
// processes that exit or crash with operations in flight, AioCbs dropped in
// flight under forced garbage collection, and descriptor reuse at close.
//
// Workers and child processes load the built package (dist/, rebuilt when
// stale by distEntryUrl()) and the plain-JavaScript fixtures next to this
// file.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { AioCb, AioFile, open } from '../../src/index.js';
import { distEntryUrl, onCleanup, readAt, tempDir, waitUntilReading, writeAt } from '../helpers.js';
import { pattern, rng } from './fixtures/pattern.mjs';
import { saturateWorkers, settledWithin, settlements, within } from './stress-helpers.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const NATIVE_ABORT = /Assertion|Aborted|Segmentation|FATAL|core dumped/;

/** A FIFO opened read-write twice: `fd` for the library, `side` to feed it. */
function fifoPair(): { path: string; fd: number; side: number } {
  const p = path.join(tempDir(), 'fifo');
  const made = spawnSync('mkfifo', [p]);
  expect(made.status).toBe(0);
  const fd = fs.openSync(p, 'r+');
  const side = fs.openSync(p, 'r+');
  return { path: p, fd, side };
}

/** Bytes waiting in a FIFO, read without blocking through a fresh descriptor. */
function drainFifo(p: string): Buffer {
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const parts: Buffer[] = [];
  try {
    for (;;) {
      const b = Buffer.alloc(65536);
      let n: number;
      try {
        n = fs.readSync(fd, b, 0, b.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw e;
      }
      if (n === 0) break;
      parts.push(b.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return Buffer.concat(parts);
}

describe('a Worker terminated with 1,000 writes in flight', () => {
  const RUNS = 50;
  const COUNT = 1000;
  const BLOCK = 4096;
  const MODES = ['aiocb', 'file', 'batch'] as const;

  it('50 times in a row: no crash, no hang, every reported write is in the file, nothing torn', async () => {
    const entry = distEntryUrl();
    const dir = tempDir();
    const seed = Number(process.env.STRESS_SEED ?? Date.now() % 2 ** 31);
    const random = rng(seed);
    const info = `seed ${seed} (STRESS_SEED replays it)`;
    let interrupted = 0;

    for (let run = 0; run < RUNS; run++) {
      const mode = MODES[run % MODES.length] as (typeof MODES)[number];
      // Half the runs write with O_DSYNC (about 0.2 ms a write here), so that
      // most writes are still queued in libc when the Worker goes.
      const dsync = run % 2 === 0;
      const p = path.join(dir, `run-${run}`);
      fs.writeFileSync(p, '');
      fs.truncateSync(p, COUNT * BLOCK);
      const fd = fs.openSync(p, fs.constants.O_RDWR | (dsync ? fs.constants.O_DSYNC : 0));
      const tagBase = run * COUNT + 1;
      // When to terminate: as soon as it is online (during module loading),
      // right after it has submitted everything, or after k completions.
      const when = run % 5 === 0 ? 'online' : run % 5 === 1 ? 'submitted' : 'after-k';
      const k = 1 + Math.floor(random() * (COUNT / 2));

      const reported = new Set<number>();
      const failures: unknown[] = [];
      let submitted = false;
      let terminating: Promise<number> | undefined;
      const worker = new Worker(fixture('terminate-worker.mjs'), {
        workerData: { entry, fd, count: COUNT, blockSize: BLOCK, tagBase, mode },
      });
      const exited = new Promise<number>((resolve, reject) => {
        worker.once('exit', resolve);
        worker.once('error', reject);
      });
      const terminate = () => {
        terminating ??= worker.terminate();
      };
      worker.once('online', () => {
        if (when === 'online') terminate();
      });
      worker.on('message', (m: unknown) => {
        if (typeof m === 'number') reported.add(m);
        else if (m === 'submitted') submitted = true;
        else failures.push(m);
        if (when === 'submitted' && submitted) terminate();
        if (when === 'after-k' && reported.size >= k) terminate();
      });

      // A Worker that finishes every write on its own is let go after 10 s.
      await within(
        exited.then(() => undefined).catch((e: unknown) => failures.push(e)),
        30_000,
        `run ${run} (${mode}, ${when}) ${info}`,
      );
      if (terminating !== undefined) await within(terminating, 30_000, `terminate() of run ${run}`);
      fs.closeSync(fd);

      expect(failures, `run ${run} (${mode}, ${when}): ${info}`).toEqual([]);
      if (reported.size < COUNT) interrupted++;

      const contents = fs.readFileSync(p);
      expect(contents.length).toBe(COUNT * BLOCK);
      const zero = Buffer.alloc(BLOCK);
      for (let i = 0; i < COUNT; i++) {
        const block = contents.subarray(i * BLOCK, (i + 1) * BLOCK);
        const want = pattern(tagBase + i, BLOCK);
        if (reported.has(i)) {
          if (!block.equals(want)) {
            expect.fail(`run ${run} (${mode}, ${when}): block ${i} was reported written but differs; ${info}`);
          }
        } else if (!block.equals(want) && !block.equals(zero)) {
          expect.fail(`run ${run} (${mode}, ${when}): unreported block ${i} is torn or foreign; ${info}`);
        }
      }
    }
    // The point of the test: most runs ended with writes still in flight.
    expect(interrupted, info).toBeGreaterThan(RUNS / 2);

    // The main thread's own engine still works afterwards.
    const { fd } = { fd: fs.openSync(path.join(dir, 'run-0'), 'r') };
    try {
      const buf = Buffer.alloc(BLOCK);
      await expect(AioCb.fromMutSlice(fd, 0, buf).read()).resolves.toBe(BLOCK);
    } finally {
      fs.closeSync(fd);
    }
  }, 240_000);
});

describe('a Worker terminated while another environment queues on the same descriptor', () => {
  // Descriptors and glibc's queues are per process, environments are not:
  // a Worker's teardown cancels its own requests, and must not leave the
  // main thread's requests on the same descriptor stranded (glibc strands
  // the requests queued behind a cancelled head that waits for a worker;
  // see faults.test.ts).
  it("the main thread's write queued behind the Worker's still completes", async () => {
    const entry = distEntryUrl();
    const p = path.join(tempDir(), 'shared');
    fs.writeFileSync(p, '................');
    const fd = fs.openSync(p, 'r+');
    // Every glibc worker busy: the Worker's write waits in glibc's run list
    // as the head of the descriptor's queue; the main thread's queues behind.
    const busy = await saturateWorkers();
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       import(workerData.entry).then(({ AioCb }) => {
         AioCb.fromSlice(workerData.fd, 0, Buffer.from('WWWW')).write().catch(() => {});
         setImmediate(() => parentPort.postMessage('submitted'));
       });`,
      { eval: true, workerData: { entry, fd } },
    );
    await within(new Promise((resolve) => worker.once('message', resolve)), 30_000, 'the Worker');
    const mine = settlements(AioCb.fromSlice(fd, 4, Buffer.from('MMMM')).write());
    // A stranded request keeps the descriptor number: leave it open then,
    // or a later test's descriptor would queue behind it.
    onCleanup(() => {
      if (mine.count > 0) fs.closeSync(fd);
    });
    await new Promise((resolve) => setImmediate(resolve));
    await within(worker.terminate(), 30_000, 'terminate()');
    await busy.release();
    await settledWithin(mine, 5_000, "the main thread's write");
    expect(mine).toEqual({ count: 1, value: 4 });
    // The Worker's write either ran or was cancelled; the main thread's ran.
    expect(['WWWWMMMM........', '....MMMM........']).toContain(fs.readFileSync(p, 'utf8'));
  });
});

describe('a Worker terminated while its completions wait for its thread', () => {
  // The reaper hands completions to the Worker's JavaScript thread. If that
  // thread is busy (here, a loop) when the Worker is terminated, the
  // delivery runs during teardown, when JavaScript can no longer run:
  // Engine::Deliver has already moved the batch into draining_ when
  // allocating its records array throws, and Engine::Shutdown settles
  // incoming_ and completed_ but never draining_. Every request of the batch
  // keeps its reaper reference, and holds the Engine through its shared_ptr:
  // about 370 bytes per request, never freed. 40 Workers x 4,000 reads leak
  // about 60 MiB this way; letting each Worker take its completions first
  // (the `control` mode of the fixture) grows RSS by about 4 MiB.
  it('frees the requests of a delivery that never ran (40 Workers x 4,000 reads)', () => {
    const entry = distEntryUrl();
    const dir = tempDir();
    const r = spawnSync(process.execPath, ['--expose-gc', fixture('undelivered-child.mjs'), entry, dir, 'leak'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    const detail = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    expect(r.status, detail).toBe(0);
    expect(r.stderr, detail).not.toMatch(NATIVE_ABORT);
    const { rssStart, rssEnd } = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as {
      rssStart: number;
      rssEnd: number;
    };
    const growthMiB = (rssEnd - rssStart) / (1 << 20);
    expect(growthMiB, `RSS grew by ${growthMiB.toFixed(1)} MiB`).toBeLessThan(20);
  }, 150_000);
});

describe('a process leaving with operations in flight', () => {
  // The child puts AioFile writes (O_DSYNC, mostly queued), a FIFO read that
  // never ends with reads queued behind it and an aio_suspend() on one, a
  // lio_listio and a readChunks iterator in flight, prints
  // `EXITING <Date.now()>` and leaves. The exit time is measured from that
  // line to the moment spawnSync() returns, which leaves process start-up out.
  const cases = [
    { how: 'exit', code: 7, stderr: undefined },
    { how: 'throw', code: 1, stderr: /boom: uncaught with operations in flight/ },
    { how: 'reject', code: 1, stderr: /boom: unhandled rejection with operations in flight/ },
    { how: 'worker', code: 7, stderr: undefined },
  ] as const;

  for (const c of cases) {
    // The exit waits, bounded (2 s), for the writes in flight (README: Guarantees).
    it(`${c.how}: exit code ${c.code} within 3 s, no native abort`, () => {
      const entry = distEntryUrl();
      const dir = tempDir();
      const r = spawnSync(process.execPath, [fixture('exit-child.mjs'), entry, dir, c.how], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      const end = Date.now();
      const detail = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
      expect(r.error, detail).toBeUndefined();
      expect(r.signal, detail).toBeNull();
      expect(r.status, detail).toBe(c.code);
      expect(r.stderr, detail).not.toMatch(NATIVE_ABORT);
      if (c.stderr !== undefined) expect(r.stderr).toMatch(c.stderr);
      const marker = /EXITING (\d+)/.exec(r.stdout);
      expect(marker, detail).not.toBeNull();
      const exitMs = end - Number(marker?.[1]);
      expect(exitMs, `exit took ${exitMs} ms after the marker`).toBeLessThan(3000);
    });
  }
});

describe('100,000 AioCbs dropped while in flight', () => {
  it('with forced collections: no crash, every read completes, RSS comes back', () => {
    const entry = distEntryUrl();
    const dir = tempDir();
    const r = spawnSync(process.execPath, ['--expose-gc', fixture('gc-child.mjs'), entry, dir], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    const detail = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    expect(r.error, detail).toBeUndefined();
    expect(r.signal, detail).toBeNull();
    expect(r.status, detail).toBe(0);
    expect(r.stderr, detail).not.toMatch(NATIVE_ABORT);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as {
      done: number;
      bad: number;
      submitted: number;
      collected: number;
      allDone: boolean;
      rssStart: number;
      rssAfterThread: number;
      rssEnd: number;
    };
    // SigevThread: every promise settled with the right bytes.
    expect(out.done).toBe(100_000);
    expect(out.bad).toBe(0);
    // SigevNone: every request finished in libc (see gc-child.mjs).
    expect(out.submitted).toBe(100_000);
    expect(out.allDone).toBe(true);
    // The blocks really were dropped: nearly all of the 200,000 were collected.
    expect(out.collected).toBeGreaterThan(0.99 * 200_000);
    // Native requests, buffers and references were released. glibc keeps its
    // request pool, and the heap keeps some room: a sane bound, not zero.
    const MiB = 1 << 20;
    expect((out.rssEnd - out.rssStart) / MiB, JSON.stringify(out)).toBeLessThan(100);
  }, 150_000);
});

describe('closing and descriptor reuse', () => {
  const { ECANCELED } = osConstants.errno;

  it('AioFile.close() waits for queued requests, so they never reach a file that reuses the number', async () => {
    const fifo = fifoPair();
    onCleanup(() => fs.closeSync(fifo.side));
    const file = AioFile.fromFd(fifo.fd, { autoClose: true, concurrency: 8 });
    // A read that blocks in libc holds the descriptor's one running slot;
    // seven writes of A's bytes queue behind it in libc, eight more wait in
    // the library's queue (concurrency 8).
    const blockedRead = readAt(file, Buffer.alloc(1), 0);
    await waitUntilReading(fifo.fd);
    const chunk = (i: number) => Buffer.alloc(64, 0x41 + i);
    const inLibc = Array.from({ length: 7 }, (_, i) => writeAt(file, chunk(i), 0));
    const inQueue = Array.from({ length: 8 }, (_, i) => writeAt(file, chunk(7 + i), 0));
    const outcomes = [...inLibc, ...inQueue].map((p) =>
      p.then(
        (n) => ({ ok: true as const, n }),
        (e: unknown) => ({ ok: false as const, e }),
      ),
    );

    let closed = false;
    const closing = file.close().then(() => (closed = true));
    await sleep(50);
    expect(closed).toBe(false);
    // The descriptor is still open: a file opened now cannot get its number.
    const dir = tempDir();
    const bPath = path.join(dir, 'B');
    const bContents = pattern(11, 4096);
    fs.writeFileSync(bPath, bContents);
    const b = await open(bPath, 'r+');
    expect(b.fd).not.toBe(fifo.fd);

    // Release the read: the queued writes run against the FIFO.
    fs.writeSync(fifo.side, Buffer.from('!'));
    await within(closing, 10_000, 'close()');
    await expect(blockedRead).resolves.toBe(1);
    const settled = await Promise.all(outcomes);
    for (const s of settled.slice(0, 7)) expect(s).toEqual({ ok: true, n: 64 });
    for (const s of settled.slice(7)) {
      expect(s.ok).toBe(false);
      expect((s as { e: unknown }).e).toMatchObject({ code: 'ECANCELED', errno: -ECANCELED });
    }
    // A's bytes went into the FIFO, in order, and nowhere else.
    expect(drainFifo(fifo.path)).toEqual(Buffer.concat(Array.from({ length: 7 }, (_, i) => chunk(i))));

    // Now the number is free: a file opened now takes it. Nothing is left
    // to run against it.
    const cPath = path.join(dir, 'C');
    const cContents = pattern(12, 4096);
    fs.writeFileSync(cPath, cContents);
    const c = await open(cPath, 'r+');
    expect(c.fd).toBe(fifo.fd);
    await sleep(50);
    await c.close();
    await b.close();
    expect(fs.readFileSync(bPath)).toEqual(bContents);
    expect(fs.readFileSync(cPath)).toEqual(cContents);
  });

  // The rule for low-level users, shown: glibc keeps the integer descriptor
  // of a queued request and nothing hooks close(), so closing a descriptor
  // while an AioCb on it is queued lets that request run against whatever
  // file takes the number next. Close a descriptor only after every AioCb on
  // it has completed (await its promise, or check `inProgress`).
  it('the hazard with raw AioCb when the caller closes the descriptor itself', async () => {
    const fifo = fifoPair();
    onCleanup(() => fs.closeSync(fifo.side));
    const blocked = AioCb.fromMutSlice(fifo.fd, 0, Buffer.alloc(1));
    const blockedRead = blocked.read();
    await waitUntilReading(fifo.fd);
    const aBytes = Buffer.from('A'.repeat(32));
    const queuedWrite = AioCb.fromSlice(fifo.fd, 0, aBytes).write();
    // Make sure the write has left the library's tick batch for libc's queue.
    await sleep(10);

    const number = fifo.fd;
    fs.closeSync(number); // the mistake: the write is still queued
    const bPath = path.join(tempDir(), 'B');
    const bContents = Buffer.from('b'.repeat(64));
    fs.writeFileSync(bPath, bContents);
    const bFd = fs.openSync(bPath, 'r+');
    onCleanup(() => fs.closeSync(bFd));
    expect(bFd).toBe(number); // the lowest free number is reused

    // The blocked read holds its own reference to the FIFO and still ends
    // when the FIFO gets a byte; then the queued write runs on fd `number`.
    fs.writeSync(fifo.side, Buffer.from('!'));
    await expect(within(blockedRead, 10_000, 'the blocked read')).resolves.toBe(1);
    await expect(within(queuedWrite, 10_000, 'the queued write')).resolves.toBe(32);
    expect(fs.readFileSync(bPath)).toEqual(Buffer.concat([aBytes, bContents.subarray(32)]));
  });
});
