// Fault handling (issue 5): a device that is always full, signals arriving
// while the native side waits, bad notification settings, and a storm of
// AbortSignals fired at random moments.
import { spawn } from 'node:child_process';
import { getEventListeners } from 'node:events';
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  AbortError,
  AioCancelStat,
  AioCb,
  AioError,
  AioFile,
  aioSuspend,
  LioMode,
  LioOpcode,
  lioListio,
  open,
  SigevNone,
  SigevSignal,
  SigevThread,
} from '../../src/index.js';
import { blockingFifo, onCleanup, readAt, tempDir, tempFile, waitUntilReading, writeAt } from '../helpers.js';
import { pattern, rng } from './fixtures/pattern.mjs';
import {
  fifos,
  rejection,
  saturateWorkers,
  settledWithin,
  settlements,
  threadsReading,
  untilReading,
  within,
} from './stress-helpers.js';

const { EIO, ENOSPC } = osConstants.errno;
const { SIGKILL, SIGSTOP, SIGUSR2 } = osConstants.signals;

/** A SIGUSR2 handler counting deliveries, removed after the test. */
function countSigusr2(): { count: number } {
  const c = { count: 0 };
  const handler = () => c.count++;
  process.on('SIGUSR2', handler);
  onCleanup(() => process.off('SIGUSR2', handler));
  return c;
}

function openDevFull(): number {
  const fd = fs.openSync('/dev/full', 'w');
  onCleanup(() => fs.closeSync(fd));
  return fd;
}

describe('/dev/full', () => {
  it('a write rejects with ENOSPC from aio_write, through AioCb, AioFile and a batch', async () => {
    const fd = openDevFull();
    const err = await rejection(AioCb.fromSlice(fd, 0, Buffer.from('no room')).write());
    expect(err).toBeInstanceOf(AioError);
    expect(err).toMatchObject({ code: 'ENOSPC', errno: -ENOSPC, syscall: 'aio_write' });
    expect(err.message).toMatch(/^ENOSPC: .*, aio_write$/);

    const file = await open('/dev/full', 'w');
    try {
      await expect(writeAt(file, Buffer.alloc(4096, 1), 0)).rejects.toMatchObject({
        code: 'ENOSPC',
        errno: -ENOSPC,
        syscall: 'aio_write',
        path: '/dev/full',
      });
      const [w] = file.batch([{ op: 'write', buffer: Buffer.from('x'), position: 0 }]);
      await expect(w).rejects.toMatchObject({ code: 'ENOSPC', syscall: 'aio_write', path: '/dev/full' });
    } finally {
      await file.close();
    }
  });

  for (const sigev of [SigevNone, SigevThread]) {
    it(`lioListio(LIO_WAIT) throws EIO and the entry keeps ENOSPC; the other entries complete (${sigev.kind})`, async () => {
      const full = openDevFull();
      const { fd, path: p } = tempFile('................');
      const good = AioCb.fromSlice(fd, 2, Buffer.from('good'), 0, sigev, LioOpcode.LIO_WRITE);
      const bad = AioCb.fromSlice(full, 0, Buffer.from('bad'), 0, sigev, LioOpcode.LIO_WRITE);
      const rbuf = Buffer.alloc(4);
      const read = AioCb.fromMutSlice(fd, 10, rbuf, 0, sigev, LioOpcode.LIO_READ);
      let thrown: unknown;
      try {
        lioListio(LioMode.LIO_WAIT, [good, bad, read]);
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(AioError);
      expect(thrown).toMatchObject({ code: 'EIO', errno: -EIO, syscall: 'lio_listio' });
      // LIO_WAIT returned after every entry completed.
      expect(bad.inProgress).toBe(false);
      expect(bad.error()).toBe(ENOSPC);
      expect(() => bad.aioReturn()).toThrow(expect.objectContaining({ code: 'ENOSPC', errno: -ENOSPC }));
      expect(good.error()).toBe(0);
      expect(good.aioReturn()).toBe(4);
      expect(read.error()).toBe(0);
      expect(read.aioReturn()).toBe(4);
      expect(rbuf.toString()).toBe('....');
      expect(fs.readFileSync(p, 'utf8')).toBe('..good..........');
      // The blocks are reusable afterwards (SigevNone settles once observed).
      const again = good.write();
      await within(aioSuspend([good], 10_000), 10_000, 'aioSuspend');
      await expect(again).resolves.toBe(4);
    });
  }
});

describe('signals while the native side waits', () => {
  it('aioSuspend with a long timeout on a blocked FIFO read: signals change nothing, one result each', async () => {
    const signals = countSigusr2();
    const fifo = blockingFifo();
    const buf = Buffer.alloc(4);
    const cb = AioCb.fromMutSlice(fifo.fd, 0, buf, 0, SigevNone);
    const read = settlements(cb.read());
    const suspended = aioSuspend([cb], 600_000);
    const suspend = settlements(suspended);
    await waitUntilReading(fifo.fd);

    const timer = setInterval(() => process.kill(process.pid, 'SIGUSR2'), 1);
    try {
      await sleep(300);
    } finally {
      clearInterval(timer);
    }
    await sleep(10);
    expect(signals.count).toBeGreaterThan(10);
    expect(read.count).toBe(0);
    expect(suspend.count).toBe(0);
    expect(cb.inProgress).toBe(true);

    fifo.release(4);
    await within(suspended, 10_000, 'aioSuspend');
    await sleep(50);
    expect(suspend).toEqual({ count: 1, value: undefined });
    expect(read).toEqual({ count: 1, value: 4 });
    expect(buf.toString()).toBe('****');
  });

  it('aioSuspend that times out while signals arrive rejects once with EAGAIN', async () => {
    const signals = countSigusr2();
    const fifo = blockingFifo();
    const cb = AioCb.fromMutSlice(fifo.fd, 0, Buffer.alloc(1), 0, SigevNone);
    const read = settlements(cb.read());
    const suspended = aioSuspend([cb], 200);
    const suspend = settlements(suspended);
    const timer = setInterval(() => process.kill(process.pid, 'SIGUSR2'), 1);
    let err: Error;
    try {
      err = await within(rejection(suspended), 10_000, 'aioSuspend');
    } finally {
      clearInterval(timer);
    }
    expect(err).toMatchObject({ code: 'EAGAIN', syscall: 'aio_suspend' });
    expect(signals.count).toBeGreaterThan(0);
    fifo.release(1);
    await within(
      new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (!cb.inProgress) {
            clearInterval(poll);
            resolve();
          }
        }, 1);
      }),
      10_000,
      'the FIFO read',
    );
    await sleep(50);
    expect(suspend.count).toBe(1);
    expect(read).toEqual({ count: 1, value: 1 });
  });

  it('SIGUSR2 from another process while lioListio(LIO_WAIT) blocks the JavaScript thread', async () => {
    const signals = countSigusr2();
    const fifo = blockingFifo();
    const target = fs.realpathSync(`/proc/self/fd/${fifo.fd}`);
    const { fd, path: p } = tempFile('0123456789');
    const rbuf = Buffer.alloc(4);
    const fifoRead = AioCb.fromMutSlice(fifo.fd, 0, rbuf, 0, SigevThread, LioOpcode.LIO_READ);
    const write = AioCb.fromSlice(fd, 4, Buffer.from('abcd'), 0, SigevThread, LioOpcode.LIO_WRITE);

    // The child waits until this process's main thread sleeps in futex()
    // (inside lio_listio), sends SIGUSR2 200 times, 1 ms apart, then feeds
    // the FIFO so the list can finish.
    const futexNr = ({ x64: 202, arm64: 98, ia32: 240, arm: 240 } as Record<string, number>)[process.arch];
    const child = spawn(
      process.execPath,
      [
        '-e',
        `
        const fs = require('node:fs');
        const [pid, fifo, futex] = process.argv.slice(1);
        const blocked = () => {
          try { return fs.readFileSync('/proc/' + pid + '/task/' + pid + '/syscall', 'utf8').startsWith(futex + ' '); }
          catch { return false; }
        };
        const deadline = Date.now() + 20000;
        let streak = 0;
        while (streak < 5 && Date.now() < deadline) {
          streak = blocked() ? streak + 1 : 0;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
        }
        let whileBlocked = 0;
        for (let i = 0; i < 200; i++) {
          if (blocked()) whileBlocked++;
          process.kill(Number(pid), 'SIGUSR2');
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
        }
        const w = fs.openSync(fifo, 'w');
        fs.writeSync(w, 'LIO!');
        fs.closeSync(w);
        console.log(JSON.stringify({ whileBlocked }));
        `,
        String(process.pid),
        target,
        String(futexNr),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let errOut = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (errOut += d));
    const childDone = new Promise<number | null>((resolve) => child.once('close', resolve));
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });

    // Blocks this thread until the child has written to the FIFO.
    const promises = lioListio(LioMode.LIO_WAIT, [fifoRead, write]);
    expect(fifoRead.inProgress).toBe(false);
    expect(write.inProgress).toBe(false);
    const [r, w] = promises.map((x) => settlements(x));

    expect(await within(childDone, 30_000, 'the signalling child')).toBe(0);
    expect(errOut).toBe('');
    const { whileBlocked } = JSON.parse(out) as { whileBlocked: number };
    expect(whileBlocked).toBeGreaterThan(100);
    await sleep(50);
    expect(signals.count).toBeGreaterThan(0);
    expect(r).toEqual({ count: 1, value: 4 });
    expect(w).toEqual({ count: 1, value: 4 });
    expect(rbuf.toString()).toBe('LIO!');
    expect(fs.readFileSync(p, 'utf8')).toBe('0123abcd89');
  });
});

describe('notification settings are validated before submission', () => {
  it('SigevSignal refuses signals glibc would fail to deliver', () => {
    for (const bad of [0, -1, 999, 65, SIGKILL, SIGSTOP]) {
      expect(() => SigevSignal(bad), `signal ${bad}`).toThrow(RangeError);
    }
    expect(() => SigevSignal(1.5)).toThrow(TypeError);
    expect(() => SigevSignal('SIGNOPE')).toThrow(TypeError);
  });

  it('a forged signal notification is refused by constructors, setSigevNotify and lioListio; nothing is submitted', async () => {
    const { fd, path: p } = tempFile('unchanged');
    for (const signal of [0, 999]) {
      const forged = { kind: 'signal', signal, value: 0 } as never;
      expect(() => AioCb.fromSlice(fd, 0, Buffer.from('XX'), 0, forged)).toThrow(RangeError);
      expect(() => AioCb.fromMutSlice(fd, 0, Buffer.alloc(2), 0, forged, LioOpcode.LIO_WRITE)).toThrow(RangeError);
      const cb = AioCb.fromSlice(fd, 0, Buffer.from('XX'), 0, SigevNone, LioOpcode.LIO_WRITE);
      expect(() => cb.setSigevNotify(forged)).toThrow(RangeError);
      expect(cb.sigevent).toBe(SigevNone);
      expect(() => lioListio(LioMode.LIO_NOWAIT, [cb], forged)).toThrow(RangeError);
      expect(() => lioListio(LioMode.LIO_WAIT, [cb], forged)).toThrow(RangeError);
      expect(cb.inProgress).toBe(false);
    }
    await sleep(20);
    expect(fs.readFileSync(p, 'utf8')).toBe('unchanged');
  });

  it('a good SigevSignal write completes with its real result and raises the signal', async () => {
    const signals = countSigusr2();
    const { fd, path: p } = tempFile('..........');
    const cb = AioCb.fromSlice(fd, 3, Buffer.from('sig'), 0, SigevSignal('SIGUSR2', 42));
    expect(cb.sigevent).toEqual({ kind: 'signal', signal: SIGUSR2, value: 42 });
    const done = settlements(cb.write());
    await within(
      new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (signals.count > 0) {
            clearInterval(poll);
            resolve();
          }
        }, 1);
      }),
      10_000,
      'SIGUSR2',
    );
    // The signal means libc finished; observing settles the promise.
    expect(cb.error()).toBe(0);
    await sleep(0);
    expect(done).toEqual({ count: 1, value: 3 });
    expect(cb.aioReturn()).toBe(3);
    expect(fs.readFileSync(p, 'utf8')).toBe('...sig....');

    // The same as a list-level notification.
    const before = signals.count;
    const e1 = AioCb.fromSlice(fd, 0, Buffer.from('L1'), 0, SigevNone, LioOpcode.LIO_WRITE);
    const e2 = AioCb.fromSlice(fd, 8, Buffer.from('L2'), 0, SigevNone, LioOpcode.LIO_WRITE);
    const ps = lioListio(LioMode.LIO_NOWAIT, [e1, e2], SigevSignal('SIGUSR2', 7));
    await within(
      new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (signals.count > before) {
            clearInterval(poll);
            resolve();
          }
        }, 1);
      }),
      10_000,
      'SIGUSR2 for the list',
    );
    expect(e1.error()).toBe(0);
    expect(e2.error()).toBe(0);
    await expect(Promise.all(ps)).resolves.toEqual([2, 2]);
    expect(fs.readFileSync(p, 'utf8')).toBe('L1.sig..L2');
  });
});

describe('listener hygiene', () => {
  // readChunks() cancels its reads through an AbortController of its own;
  // every read in flight listens to it, so a depth above Node's default of
  // 10 listeners prints a MaxListenersExceededWarning the caller cannot
  // prevent (the controller is internal). AioFile's own close controller
  // raises the limit with setMaxListeners; readChunks' does not.
  it('readChunks with depth 32 prints no MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    onCleanup(() => process.off('warning', onWarning));
    const contents = pattern(5, 256 * 1024);
    const { path: p } = tempFile(contents);
    const file = await open(p, 'r');
    const chunks: Buffer[] = [];
    for await (const c of file.readChunks({ chunkSize: 1024, depth: 32 })) chunks.push(Buffer.from(c));
    await file.close();
    expect(Buffer.concat(chunks)).toEqual(contents);
    await sleep(20); // warnings are emitted on a later tick
    expect(warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);
  });
});

describe('cancellation storm', () => {
  const COUNT = 10_000;
  const BLOCK = 1024;
  const PHASES = ['before', 'sync', 'microtask', 'immediate', 'timer', 'after', 'never'] as const;
  type Phase = (typeof PHASES)[number];

  it('10,000 writes aborted at random moments: one settlement each, no listener left, the file agrees byte for byte', async () => {
    const seed = Number(process.env.STRESS_SEED ?? Date.now() % 2 ** 31);
    const random = rng(seed);
    const info = `seed ${seed} (STRESS_SEED replays it)`;
    const dir = tempDir();
    const p = path.join(dir, 'storm');
    const background = (i: number) => pattern(2_000_000 + i, BLOCK);
    const wanted = (i: number) => pattern(1_000_000 + i, BLOCK);
    fs.writeFileSync(p, Buffer.concat(Array.from({ length: COUNT }, (_, i) => background(i))));

    // O_DSYNC makes each write slow enough (a fraction of a millisecond)
    // that timers fire while operations are queued in the library (beyond
    // concurrency 16), queued in libc (one runs per descriptor) or running.
    const file: AioFile = await open(p, fs.constants.O_RDWR | fs.constants.O_DSYNC, 0o666, { concurrency: 16 });
    const ops: {
      phase: Phase;
      straightToLibc: boolean;
      ac: AbortController;
      reason: Error;
      count: number;
      ok?: boolean;
      error?: unknown;
      listenersAtSettle?: number;
    }[] = [];
    const all: Promise<void>[] = [];
    // Submissions are paced, in stretches of 500, to keep at most 48 or at
    // most 16 operations outstanding. With 48, 16 are in libc (one running,
    // the rest queued behind it on the descriptor) and the rest wait in the
    // library's queue; with 16 (the concurrency), every operation goes
    // straight to libc, so an AbortError there means aio_cancel() succeeded.
    let outstanding = 0;
    let wake: (() => void) | undefined;
    for (let i = 0; i < COUNT; i++) {
      const limit = Math.floor(i / 500) % 2 === 0 ? 48 : 16;
      while (outstanding >= limit) {
        // A stall is reported as such (with what is stuck), not as a timeout.
        await within(new Promise<void>((resolve) => (wake = resolve)), 15_000, 'the next settlement').catch(() => {
          const stuck = ops.flatMap((o, k) =>
            o.count === 0 ? [`${k}:${o.phase}${o.straightToLibc ? ':libc' : ''}`] : [],
          );
          throw new Error(`storm stalled at write ${i}: ${stuck.length} unsettled (${stuck.join(' ')}); ${info}`);
        });
      }
      const straightToLibc = outstanding < 16;
      const phase = PHASES[Math.floor(random() * PHASES.length)] as Phase;
      const ac = new AbortController();
      const reason = new Error(`abort ${i}`);
      const op = { phase, ac, reason, count: 0, straightToLibc } as (typeof ops)[number];
      ops.push(op);
      if (phase === 'before') ac.abort(reason);
      outstanding++;
      const done = () => {
        outstanding--;
        op.count++;
        op.listenersAtSettle = getEventListeners(ac.signal, 'abort').length;
        wake?.();
      };
      const settled = writeAt(file, wanted(i), i * BLOCK, { signal: ac.signal }).then(
        () => {
          op.ok = true;
          done();
        },
        (e: unknown) => {
          op.ok = false;
          op.error = e;
          done();
        },
      );
      all.push(settled);
      const abort = () => ac.abort(reason);
      if (phase === 'sync') abort();
      else if (phase === 'microtask') queueMicrotask(abort);
      else if (phase === 'immediate') setImmediate(abort);
      else if (phase === 'timer') setTimeout(abort, Math.floor(random() * 6));
      else if (phase === 'after') void settled.then(abort);
    }
    await within(Promise.all(all), 30_000, `the storm; ${info}`);
    await sleep(20); // every timer has fired
    await file.close();

    const contents = fs.readFileSync(p);
    expect(contents.length).toBe(COUNT * BLOCK);
    const tally: Record<string, number> = {};
    for (let i = 0; i < COUNT; i++) {
      const op = ops[i] as (typeof ops)[number];
      const where = `write ${i} (${op.phase}); ${info}`;
      if (op.count !== 1) expect.fail(`${where}: settled ${op.count} times`);
      if (op.listenersAtSettle !== 0) expect.fail(`${where}: ${op.listenersAtSettle} abort listeners left`);
      if (getEventListeners(op.ac.signal, 'abort').length !== 0) expect.fail(`${where}: abort listener left`);
      const block = contents.subarray(i * BLOCK, (i + 1) * BLOCK);
      if (op.ok) {
        if (op.phase === 'before') expect.fail(`${where}: resolved although aborted before the call`);
        if (!block.equals(wanted(i))) expect.fail(`${where}: resolved but its block does not hold it`);
      } else {
        const e = op.error as Error;
        if (!(e instanceof AbortError)) expect.fail(`${where}: rejected with ${String(e)}, not AbortError`);
        if (e.cause !== op.reason) expect.fail(`${where}: AbortError without the abort reason as cause`);
        if (op.phase === 'after' || op.phase === 'never') expect.fail(`${where}: AbortError without an abort first`);
        if (!block.equals(background(i))) expect.fail(`${where}: rejected with AbortError but its block changed`);
      }
      const key = `${op.phase}:${op.ok ? 'resolved' : 'aborted'}${op.straightToLibc ? ':libc' : ''}`;
      tally[key] = (tally[key] ?? 0) + 1;
    }
    // Both outcomes happened for operations aborted while in the system.
    expect(tally['before:aborted']).toBeGreaterThan(0);
    expect(tally['never:resolved']).toBeGreaterThan(0);
    expect((tally['sync:aborted'] ?? 0) + (tally['timer:aborted'] ?? 0), JSON.stringify(tally)).toBeGreaterThan(0);
    expect(tally['timer:resolved'] ?? 0, JSON.stringify(tally)).toBeGreaterThan(0);
  }, 180_000);
});

// glibc's aio_cancel() on the first request of a descriptor while that
// request waits in the run list for a worker (all workers busy, or none idle
// yet) removes it and marks the next request on the descriptor runnable, but
// never puts that one on the run list (rt/aio_misc.c, __aio_remove_request):
// it and everything later queued on the descriptor stay EINPROGRESS forever.
// Reproduced in plain C against glibc 2.36. The library cancels single
// requests from AioCb.cancel(), AbortSignals, dropped AioCbs and teardown, so
// it must not leave the requests behind a cancelled one stranded.
describe('cancelling the first request queued on a descriptor', () => {
  it('AioCb.cancel(): the request behind it still completes', async () => {
    const { fd, path: p } = tempFile('................');
    const busy = await saturateWorkers();
    const a = AioCb.fromSlice(fd, 0, Buffer.from('AAAA'));
    const b = AioCb.fromSlice(fd, 4, Buffer.from('BBBB'));
    const pa = settlements(a.write());
    const pb = settlements(b.write());
    // Either outcome is allowed for the head; stranding b is not.
    const st = a.cancel();
    expect([AioCancelStat.AioCanceled, AioCancelStat.AioNotCanceled]).toContain(st);
    await busy.release();
    await settledWithin(pa, 5_000, 'the first write');
    await settledWithin(pb, 5_000, 'the write queued behind the first');
    expect(pb).toEqual({ count: 1, value: 4 });
    if (st === AioCancelStat.AioCanceled) {
      expect(pa.error).toMatchObject({ code: 'ECANCELED' });
      expect(fs.readFileSync(p, 'utf8')).toBe('....BBBB........');
    } else {
      expect(pa).toEqual({ count: 1, value: 4 });
      expect(fs.readFileSync(p, 'utf8')).toBe('AAAABBBB........');
    }
  });

  it('file.write() aborted in the same tick: the write after it still completes', async () => {
    const { path: p } = tempFile('................');
    const file = await open(p, 'r+');
    const busy = await saturateWorkers();
    const ac = new AbortController();
    const first = settlements(writeAt(file, Buffer.from('CCCC'), 0, { signal: ac.signal }));
    const second = settlements(writeAt(file, Buffer.from('DDDD'), 4));
    ac.abort();
    await busy.release();
    await settledWithin(first, 5_000, 'the aborted write');
    await settledWithin(second, 5_000, 'the write after the aborted one');
    expect(second).toEqual({ count: 1, value: 4 });
    await file.close();
    if (first.error !== undefined) {
      expect(first.error).toBeInstanceOf(AbortError);
      expect(fs.readFileSync(p, 'utf8')).toBe('....DDDD........');
    } else {
      expect(first).toEqual({ count: 1, value: 4 });
      expect(fs.readFileSync(p, 'utf8')).toBe('CCCCDDDD........');
    }
  });

  // With priorities the head is not always the oldest request: when the
  // running head finishes, glibc promotes the most urgent queued request,
  // which may have been submitted after a less urgent one. If no worker is
  // free at that moment, the promoted request waits in the run list as the
  // head, and cancelling it strands the older, less urgent one behind it.
  // Here: H (a FIFO read) runs on descriptor F; R1 (priority 10) and then R2
  // (priority 0) queue behind it, glibc orders them R2, R1. Every other
  // worker is busy, and X, a read on another FIFO, waits in the run list.
  // When H ends, its worker takes X (ahead of R2 in the run list) and R2 is
  // left waiting as F's head, with the older R1 behind it.
  for (const api of ['AioCb', 'AioFile'] as const) {
    it(`${api}: cancelling a more urgent request promoted to the head does not strand an older one`, async () => {
      const [F] = fifos(1, 'head', true) as [number];
      const file = AioFile.fromFd(F, { concurrency: 8 });
      const ac = new AbortController();
      const b1 = Buffer.alloc(1);
      const b2 = Buffer.alloc(1);
      let h: Promise<number>;
      let r1: ReturnType<typeof settlements<number>>;
      let r2: ReturnType<typeof settlements<number>>;
      let cancelR2: () => unknown;
      if (api === 'AioCb') {
        h = AioCb.fromMutSlice(F, 0, Buffer.alloc(1)).read();
        await untilReading([F], 1);
        r1 = settlements(AioCb.fromMutSlice(F, 0, b1, 10).read());
        const cb2 = AioCb.fromMutSlice(F, 0, b2, 0);
        r2 = settlements(cb2.read());
        cancelR2 = () => cb2.cancel();
      } else {
        h = readAt(file, Buffer.alloc(1), 0);
        await untilReading([F], 1);
        r1 = settlements(readAt(file, b1, 0, { reqprio: 10 }));
        r2 = settlements(readAt(file, b2, 0, { reqprio: 0, signal: ac.signal }));
        cancelR2 = () => ac.abort();
      }
      await sleep(5);
      const busy = await saturateWorkers(19);
      const [G] = fifos(1, 'x') as [number];
      const x = AioCb.fromMutSlice(G, 0, Buffer.alloc(1)).read();
      await sleep(10);
      expect(threadsReading([G])).toBe(0); // X waits in the run list
      fs.writeSync(F, 'h');
      await expect(within(h, 5_000, 'H')).resolves.toBe(1);
      await untilReading([G], 1); // H's worker took X; R2 waits as F's head
      cancelR2();
      await busy.release();
      fs.writeSync(G, 'x');
      await x;
      fs.writeSync(F, 'ab');
      await settledWithin(r2, 5_000, 'R2');
      await settledWithin(r1, 5_000, 'R1, queued behind R2');
      expect(r1).toEqual({ count: 1, value: 1 });
      await file.close();
    });
  }
});
