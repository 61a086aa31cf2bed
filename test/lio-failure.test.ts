// A lioListio that fails as a whole (issue 9, point 6) leaves every entry as
// it was before the call, and throws an AioError with code, errno and
// syscall. The failure is forced by running out of descriptors: under
// `ulimit -n 64` the child opens files until EMFILE before its first
// request, so the engine cannot get the eventfd it needs when it starts
// (native/engine.cc, EnsureReaper, called by native lioListio). Before the
// redesign the call threw a plain Error without errno, and each entry then
// reported inProgress === false while read() rejected with
// ERR_AIO_IN_PROGRESS.
import { beforeAll, describe, expect, it } from 'vitest';
import { detail, expectClean, lastJson, runModule } from './child.js';
import { distEntryUrl, tempFile } from './helpers.js';

const CONTENTS = 'abcdefghijklmnop';
let entry = '';
beforeAll(() => {
  entry = distEntryUrl();
}, 120_000);

interface Out {
  opened: number;
  thrown: {
    name: string;
    isAioError: boolean;
    code: unknown;
    errno: unknown;
    syscall: unknown;
    message: string;
  } | null;
  inProgress: boolean[];
  bufsAfterFailure: string[];
  again: unknown[];
  bufs: string[];
}

describe('lioListio when the engine cannot start (EMFILE)', () => {
  it('throws an AioError with code, errno and syscall; the entries stay usable', () => {
    const { path } = tempFile(CONTENTS);
    const r = runModule(
      entry,
      `
      const { AioCb, AioError, LioMode, LioOpcode, SigevThread } = m;
      const fd = fs.openSync(${JSON.stringify(path)}, 'r');
      const bufs = [Buffer.alloc(4, 0x2e), Buffer.alloc(4, 0x2e)];
      const cbs = bufs.map((b, i) => AioCb.fromMutSlice(fd, i * 4, b, 0, SigevThread, LioOpcode.LIO_READ));
      // Every descriptor taken: the first request cannot start the engine.
      const hoard = [];
      try {
        for (;;) hoard.push(fs.openSync(${JSON.stringify(path)}, 'r'));
      } catch (e) {
        if (e.code !== 'EMFILE') throw e;
      }
      const out = { opened: hoard.length, thrown: null };
      try {
        const ps = m.lioListio(LioMode.LIO_NOWAIT, cbs);
        for (const p of ps) p.catch(() => {});
      } catch (e) {
        out.thrown = { name: e?.constructor?.name, isAioError: e instanceof AioError, code: e?.code, errno: e?.errno, syscall: e?.syscall, message: String(e?.message) };
      }
      out.inProgress = cbs.map((cb) => cb.inProgress);
      out.bufsAfterFailure = bufs.map(String);
      for (const h of hoard) fs.closeSync(h);
      // Descriptors are free again: each block can be submitted as if the
      // failed call never happened.
      out.again = [];
      for (const cb of cbs) {
        try {
          out.again.push(await Promise.race([cb.read(), new Promise((r) => setTimeout(() => r('pending'), 3000))]));
        } catch (e) {
          out.again.push({ name: e?.constructor?.name, code: e?.code });
        }
      }
      out.bufs = bufs.map(String);
      console.log(JSON.stringify(out));
      process.exit(0);
      `,
      { timeoutMs: 15_000, fdLimit: 64 },
    );
    const out = lastJson<Out>(r);
    expect(out.opened, 'descriptors the child could still open').toBeGreaterThan(0);
    expect(out.thrown, `lioListio did not throw: ${JSON.stringify(out)}\n${detail(r)}`).not.toBeNull();
    const t = out.thrown as NonNullable<Out['thrown']>;
    expect(t.isAioError, JSON.stringify(out)).toBe(true);
    expect(typeof t.code, JSON.stringify(t)).toBe('string');
    expect(t.code).toMatch(/^E[A-Z0-9]+$/);
    expect(typeof t.errno, JSON.stringify(t)).toBe('number');
    expect(t.errno as number).toBeLessThan(0);
    expect(typeof t.syscall, JSON.stringify(t)).toBe('string');
    expect(out.inProgress).toEqual([false, false]);
    expect(out.bufsAfterFailure).toEqual(['....', '....']);
    expect(out.again, JSON.stringify(out)).toEqual([4, 4]);
    expect(out.bufs).toEqual(['abcd', 'efgh']);
    expectClean(r);
  });
});
