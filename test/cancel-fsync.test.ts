// Cancelling an aio_fsync (issue 9, point 3). glibc enqueues LIO_SYNC and
// LIO_DSYNC with aio_reqprio forced to 0, so an fsync made with prio 10 goes
// ahead of an older read of prio 5 on its descriptor. The cancel rule must use
// the priority glibc applied: judged by the caller's prio the fsync looked
// safely queued, was cancelled, and every request behind it was stranded
// (glibc's queue-head defect, see test/stress/faults.test.ts).
//
// In a child process, since aioInit() must come before the first request.
import { beforeAll, describe, expect, it } from 'vitest';
import { detail, expectClean, lastJson, runModule } from './child.js';
import { distEntryUrl, tempDir } from './helpers.js';

let entry = '';
beforeAll(() => {
  entry = distEntryUrl();
}, 120_000);

describe('cancelling an fsync queued between reads of different priorities', () => {
  it('aioInit({ threads: 1 }), the fsync waiting at the head of the queue: the prio-5 read behind the cancelled fsync still completes with its bytes', () => {
    const dir = tempDir();
    const r = runModule(
      entry,
      `
      const { AioCb, AioCancelStat, AioFsyncMode, aioInit } = m;
      aioInit({ threads: 1 });
      const mkfifo = (name) => {
        const p = path.join(${JSON.stringify(dir)}, name);
        execFileSync('mkfifo', [p]);
        return fs.openSync(p, 'r+');
      };
      // Threads of this process blocked in read(2) on one of fds.
      const readers = (fds) => {
        const want = new Set(fds.map((fd) => '0 0x' + fd.toString(16)));
        let n = 0;
        for (const t of fs.readdirSync('/proc/self/task')) {
          try {
            const w = fs.readFileSync('/proc/self/task/' + t + '/syscall', 'utf8').split(' ');
            if (want.has(w[0] + ' ' + w[1])) n++;
          } catch {}
        }
        return n;
      };
      const until = async (fds, k, what) => {
        for (let i = 0; readers(fds) < k; i++) {
          if (i > 5000) throw new Error(what + ' never reached read(2)');
          await new Promise((r) => setTimeout(r, 1));
        }
      };
      const outcome = (p) => p.then((n) => ({ ok: n }), (e) => ({ code: e.code }));
      const out = {};
      const F = mkfifo('F');
      const bufA = Buffer.alloc(4, 0x2e);
      const bufB = Buffer.alloc(4, 0x2e);
      // A runs (blocked on F); B (prio 5) and then the fsync (prio 10, which
      // glibc turns into 0, so it goes ahead of B) queue behind it.
      const a = outcome(AioCb.fromMutSlice(F, 0, bufA, 0).read());
      await until([F], 1, 'A');
      const b = outcome(AioCb.fromMutSlice(F, 0, bufB, 5).read());
      const fcb = AioCb.fromFd(F, 10);
      const f = outcome(fcb.fsync(AioFsyncMode.O_SYNC));
      // Reads on other FIFOs wait in glibc's run list (the pool is busy):
      // when A ends, its worker takes one of them and the fsync is left
      // waiting for a worker as the head of F's queue.
      const G = [0, 1, 2, 3].map((i) => mkfifo('G' + i));
      const xs = G.map((g) => outcome(AioCb.fromMutSlice(g, 0, Buffer.alloc(1)).read()));
      await new Promise((r) => setTimeout(r, 20));
      const gBefore = readers(G);
      fs.writeSync(F, 'AAAA');
      out.a = await a;
      out.bufA = bufA.toString();
      await until(G, gBefore + 1, "a read on G taking A's worker");
      await new Promise((r) => setTimeout(r, 10));
      const st = fcb.cancel();
      out.cancel = st === AioCancelStat.AioCanceled ? 'canceled' : st === AioCancelStat.AioNotCanceled ? 'notCanceled' : 'allDone';
      for (const g of G) fs.writeSync(g, 'x');
      out.xs = await Promise.all(xs);
      fs.writeSync(F, 'BBBB');
      const timeout = new Promise((r) => setTimeout(() => r({ pending: 'after 3 s' }), 3000));
      out.b = await Promise.race([b, timeout]);
      out.bufB = bufB.toString();
      out.f = await Promise.race([f, timeout]);
      console.log(JSON.stringify(out));
      // A stranded read would keep the process alive.
      process.exit(0);
      `,
      { timeoutMs: 15_000 },
    );
    expectClean(r);
    const out = lastJson<{ cancel: string; a: unknown; bufA: string; b: unknown; bufB: string; f: unknown }>(r);
    expect(out.a, detail(r)).toEqual({ ok: 4 });
    expect((out as { xs?: unknown }).xs).toEqual([{ ok: 1 }, { ok: 1 }, { ok: 1 }, { ok: 1 }]);
    expect(out.bufA).toBe('AAAA');
    expect(out.b, `the prio-5 read behind the cancelled fsync: ${JSON.stringify(out)}`).toEqual({ ok: 4 });
    expect(out.bufB).toBe('BBBB');
    // The fsync settles either way: cancelled, or with its real result (a
    // FIFO cannot be synced: EINVAL).
    if (out.cancel === 'canceled') expect(out.f).toEqual({ code: 'ECANCELED' });
    else expect([{ ok: 0 }, { code: 'EINVAL' }]).toContainEqual(out.f);
  });
});
