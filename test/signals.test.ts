// Which signals may notify completion (issue 9, point 5). SigevSignal used to
// accept signals that kill or reconfigure the process: 32 and 33 (reserved by
// glibc), SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGUSR1 (opens the inspector), and
// SIGUSR2 with no listener; the list-level signal of lioListio was not checked
// natively. The rule now: real-time signals (SIGRTMIN..SIGRTMAX, 34..64 with
// glibc) anywhere, and outside Workers a standard signal that has a listener
// at submission; anything else is a RangeError or TypeError before anything is
// submitted. A completion whose signal has no listener (any more) must not
// kill the process.
//
// Every case is a child process: a wrong answer here kills the process.
import { constants as osConstants } from 'node:os';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ChildRun, detail, expectClean, lastJson, runModule } from './child.js';
import { distEntryUrl, tempDir, tempFile } from './helpers.js';

const CONTENTS = 'abcdefghijklmnop';
const { SIGSEGV, SIGKILL, SIGSTOP, SIGUSR1, SIGBUS, SIGFPE, SIGILL } = osConstants.signals;
const MISUSE = ['RangeError', 'TypeError'];
let entry = '';
beforeAll(() => {
  entry = distEntryUrl();
}, 120_000);

function child(body: string, timeoutMs = 10_000): ChildRun {
  return runModule(
    entry,
    `
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const name = (e) => e?.constructor?.name ?? String(e);
    /** Settles p as 'resolved:<n>' or the error's class, or 'pending' after ms. */
    const within = (p, ms) =>
      Promise.race([p.then((n) => 'resolved:' + n, name), sleep(ms).then(() => 'pending')]);
    /** cb.read(), its sync throw as a rejection. */
    const read = (cb) => { try { return cb.read(); } catch (e) { return Promise.reject(e); } };
    /** Waits for a SigevNone/SigevSignal block to finish, and settles its promise. */
    const observe = async (cb) => { for (let i = 0; cb.inProgress && i < 100; i++) await m.aioSuspend([cb], 100).catch(() => {}); };
    ${body}
    `,
    { timeoutMs },
  );
}

describe('signals that must not notify completion', () => {
  const refused: [string, number][] = [
    ['32 (reserved by glibc)', 32],
    ['33 (reserved by glibc)', 33],
    ['SIGSEGV', SIGSEGV],
    ['SIGKILL', SIGKILL],
    ['SIGSTOP', SIGSTOP],
    ['SIGUSR1', SIGUSR1],
    ['SIGBUS', SIGBUS],
    ['SIGFPE', SIGFPE],
    ['SIGILL', SIGILL],
  ];
  for (const [label, signo] of refused) {
    it(`${label}: SigevSignal or the submission throws; lioListio with it as the list signal throws; nothing submitted`, () => {
      const { path } = tempFile(CONTENTS);
      const r = child(`
        const fd = fs.openSync(${JSON.stringify(path)}, 'r');
        const out = {};
        let sev;
        try { sev = m.SigevSignal(${signo}); out.factory = 'accepted'; } catch (e) { out.factory = name(e); }
        if (sev !== undefined) {
          const buf = Buffer.alloc(4, 0x2e);
          let cb;
          try { cb = m.AioCb.fromMutSlice(fd, 0, buf, 0, sev); } catch (e) { out.construct = name(e); }
          if (cb !== undefined) {
            out.read = await within(read(cb), 500);
            out.inProgress = cb.inProgress;
          }
          out.buf = buf.toString();
        }
        // The list-level signal, forged past the JavaScript factory.
        const lbuf = Buffer.alloc(4, 0x2e);
        const lcb = m.AioCb.fromMutSlice(fd, 4, lbuf, 0, m.SigevNone, m.LioOpcode.LIO_READ);
        try {
          m.lioListio(m.LioMode.LIO_NOWAIT, [lcb], { kind: 'signal', signal: ${signo}, value: 0 }).forEach((p) => p.catch(() => {}));
          out.lio = 'accepted';
        } catch (e) { out.lio = name(e); }
        await sleep(100);
        out.lioInProgress = lcb.inProgress;
        out.lbuf = lbuf.toString();
        console.log(JSON.stringify(out));
      `);
      const out = lastJson<Record<string, unknown>>(r);
      if (out.factory === 'accepted') {
        if (out.construct === undefined) {
          expect(MISUSE, `the submission with signal ${signo} was not refused: ${JSON.stringify(out)}`).toContain(
            out.read,
          );
          expect(out.inProgress).toBe(false);
        } else {
          expect(MISUSE).toContain(out.construct);
        }
        expect(out.buf, 'the buffer of the refused read').toBe('....');
      } else {
        expect(MISUSE).toContain(out.factory);
      }
      expect(MISUSE, `lioListio with list signal ${signo}: ${JSON.stringify(out)}`).toContain(out.lio);
      expect(out.lioInProgress).toBe(false);
      expect(out.lbuf).toBe('....');
      expectClean(r);
    });
  }
});

describe('standard signals on the main thread', () => {
  it('SIGUSR2 with no listener at submission: the read is refused with RangeError, nothing submitted', () => {
    const { path } = tempFile(CONTENTS);
    const r = child(`
      const fd = fs.openSync(${JSON.stringify(path)}, 'r');
      const buf = Buffer.alloc(4, 0x2e);
      const cb = m.AioCb.fromMutSlice(fd, 0, buf, 0, m.SigevSignal('SIGUSR2'));
      const out = { read: await within(read(cb), 500), inProgress: cb.inProgress };
      await sleep(100);
      out.buf = buf.toString();
      console.log(JSON.stringify(out));
    `);
    const out = lastJson<Record<string, unknown>>(r);
    expect(out, detail(r)).toEqual({ read: 'RangeError', inProgress: false, buf: '....' });
    expectClean(r);
  });

  it('SIGUSR2 with a listener: the read completes with its bytes and the listener fires', () => {
    const { path } = tempFile(CONTENTS);
    const r = child(`
      let fired = 0;
      process.on('SIGUSR2', () => fired++);
      const fd = fs.openSync(${JSON.stringify(path)}, 'r');
      const buf = Buffer.alloc(4, 0x2e);
      const cb = m.AioCb.fromMutSlice(fd, 4, buf, 0, m.SigevSignal('SIGUSR2', 9));
      const p = read(cb);
      await observe(cb);
      const result = await within(p, 2000);
      for (let i = 0; fired === 0 && i < 200; i++) await sleep(10);
      console.log(JSON.stringify({ result, buf: buf.toString(), fired: fired > 0 }));
      process.removeAllListeners('SIGUSR2');
    `);
    const out = lastJson<Record<string, unknown>>(r);
    expect(out, detail(r)).toEqual({ result: 'resolved:4', buf: 'efgh', fired: true });
    expectClean(r);
  });

  it('SIGUSR2 whose listener is removed while the read is in flight: the completion does not kill', () => {
    const dir = tempDir();
    const r = child(`
      process.on('SIGUSR2', () => {});
      const fifo = path.join(${JSON.stringify(dir)}, 'fifo');
      execFileSync('mkfifo', [fifo]);
      const fd = fs.openSync(fifo, 'r+');
      const buf = Buffer.alloc(4, 0x2e);
      const cb = m.AioCb.fromMutSlice(fd, 0, buf, 0, m.SigevSignal('SIGUSR2'));
      const p = read(cb);
      await sleep(50);
      process.removeAllListeners('SIGUSR2');
      fs.writeSync(fd, 'WXYZ');
      await observe(cb);
      const result = await within(p, 2000);
      await sleep(200);
      console.log(JSON.stringify({ result, buf: buf.toString() }));
    `);
    const out = lastJson<Record<string, unknown>>(r);
    expect(out, detail(r)).toEqual({ result: 'resolved:4', buf: 'WXYZ' });
    expectClean(r);
  });

  it('SIGUSR2 completing as the process ends (Node removes the listeners): exit status 0, 10 runs', () => {
    for (let run = 0; run < 10; run++) {
      const dir = tempDir();
      const r = child(`
        process.on('SIGUSR2', () => {});
        const fifo = path.join(${JSON.stringify(dir)}, 'fifo');
        execFileSync('mkfifo', [fifo]);
        const fd = fs.openSync(fifo, 'r+');
        const cb = m.AioCb.fromMutSlice(fd, 0, Buffer.alloc(4), 0, m.SigevSignal('SIGUSR2'));
        read(cb).catch(() => {});
        await sleep(${run % 2 === 0 ? 50 : 5});
        console.log(JSON.stringify({ ending: true }));
        // The read completes now; the script ends.
        fs.writeSync(fd, 'WXYZ');
      `);
      expect(lastJson(r), detail(r)).toEqual({ ending: true });
      expectClean(r);
    }
  });
});

describe('real-time signals', () => {
  const rt = [34, 35, 40, 50, 63, 64];

  it(`${rt.join(', ')} on the main thread with no listener: each read completes, the process is not killed`, () => {
    const { path } = tempFile(CONTENTS);
    const r = child(`
      const fd = fs.openSync(${JSON.stringify(path)}, 'r');
      const out = [];
      for (const [i, sig] of ${JSON.stringify(rt)}.entries()) {
        const buf = Buffer.alloc(2, 0x2e);
        const cb = m.AioCb.fromMutSlice(fd, i * 2, buf, 0, m.SigevSignal(sig, i));
        const p = read(cb);
        await observe(cb);
        out.push([sig, await within(p, 2000), buf.toString()]);
      }
      await sleep(200); // every signal has been delivered
      console.log(JSON.stringify(out));
    `);
    const out = lastJson<unknown[]>(r);
    expect(out, detail(r)).toEqual(rt.map((sig, i) => [sig, 'resolved:2', CONTENTS.slice(i * 2, i * 2 + 2)]));
    expectClean(r);
  });
});

describe('signals in a Worker', () => {
  it('standard signals are refused (RangeError/TypeError, nothing submitted); real-time signals work', () => {
    const { path } = tempFile(CONTENTS);
    const workerBody = `
      const { parentPort, workerData } = require('node:worker_threads');
      const fs = require('node:fs');
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const name = (e) => e?.constructor?.name ?? String(e);
      import(workerData.entry).then(async (m) => {
        const fd = fs.openSync(workerData.path, 'r');
        const out = { standard: {}, rt: {} };
        for (const sig of ['SIGUSR2', 'SIGHUP', 'SIGWINCH', 'SIGTERM']) {
          const buf = Buffer.alloc(4, 0x2e);
          let cb;
          try {
            cb = m.AioCb.fromMutSlice(fd, 0, buf, 0, m.SigevSignal(sig));
          } catch (e) {
            out.standard[sig] = name(e);
            continue;
          }
          let p;
          try { p = cb.read(); } catch (e) { p = Promise.reject(e); }
          out.standard[sig] = await Promise.race([p.then(() => 'resolved', name), sleep(500).then(() => 'pending')]);
          out.standard[sig + ':inProgress'] = cb.inProgress;
          out.standard[sig + ':buf'] = buf.toString();
        }
        for (const [i, sig] of [34, 64].entries()) {
          const buf = Buffer.alloc(4, 0x2e);
          const cb = m.AioCb.fromMutSlice(fd, 4 + i * 4, buf, 0, m.SigevSignal(sig));
          const p = cb.read();
          for (let k = 0; cb.inProgress && k < 100; k++) await m.aioSuspend([cb], 100).catch(() => {});
          out.rt[sig] = [await Promise.race([p.then((n) => n, name), sleep(2000).then(() => 'pending')]), buf.toString()];
        }
        parentPort.postMessage(out);
      });
    `;
    const r = child(`
      // Listeners on the main thread, so that a wrongly accepted standard
      // signal shows as an accepted read, not as a dead process.
      for (const sig of ['SIGUSR2', 'SIGHUP', 'SIGWINCH', 'SIGTERM']) process.on(sig, () => {});
      const w = new Worker(${JSON.stringify(workerBody)}, { eval: true, execArgv: [], workerData: { entry: ${JSON.stringify(entry)}, path: ${JSON.stringify(path)} } });
      const out = await Promise.race([
        new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); }),
        sleep(8000).then(() => 'the Worker never reported'),
      ]);
      await w.terminate();
      await sleep(200);
      console.log(JSON.stringify(out));
      process.exit(0);
    `);
    const out = lastJson<{ standard: Record<string, unknown>; rt: Record<string, unknown> }>(r);
    for (const sig of ['SIGUSR2', 'SIGHUP', 'SIGWINCH', 'SIGTERM']) {
      expect(MISUSE, `${sig} in a Worker: ${JSON.stringify(out.standard)}`).toContain(out.standard[sig]);
      if (`${sig}:inProgress` in out.standard) {
        expect(out.standard[`${sig}:inProgress`]).toBe(false);
        expect(out.standard[`${sig}:buf`]).toBe('....');
      }
    }
    expect(out.rt, detail(r)).toEqual({ 34: [4, 'efgh'], 64: [4, 'ijkl'] });
    expectClean(r);
  });
});
