// Stall sweep (issue 9, point 1): no number of environments and no size of
// glibc's pool may stop the process. Before the engine redesign each
// environment's completion thread parked one glibc worker in a sentinel
// aio_read on an eventfd; once every worker held one, nothing ran again, in
// any environment (20 Workers with 8 reads in flight stopped after about
// 3,700 reads; with aioInit({ threads: 1 }) one environment with 8 reads in
// flight on one file stopped after about 14).
//
// Each case is a child process (fixtures/stall-child.mjs) with a timeout:
// every environment reads its own 256 KiB file with AioCb SigevThread reads,
// `depth` in flight, until it has done `reads`, checking each read's bytes.
// A stall becomes a failure that shows the per-environment progress.
import { describe, expect, it } from 'vitest';
import { detail, expectClean, lastJson, runNode } from '../child.js';
import { distEntryUrl, tempDir } from '../helpers.js';

const fixture = new URL('./fixtures/stall-child.mjs', import.meta.url).pathname;
const TIMEOUT_MS = 25_000;

interface Case {
  /** Workers; 0 = the main thread alone. */
  workers: number;
  depth: number;
  reads: number;
  /** aioInit({ threads }) first; 0 = glibc's default pool (20). */
  threads: number;
}

const cases: Case[] = [
  { workers: 1, depth: 8, reads: 3000, threads: 0 },
  { workers: 8, depth: 16, reads: 2000, threads: 0 },
  { workers: 24, depth: 8, reads: 2000, threads: 0 },
  { workers: 40, depth: 4, reads: 2000, threads: 0 },
  { workers: 0, depth: 8, reads: 2000, threads: 1 },
  { workers: 1, depth: 8, reads: 2000, threads: 1 },
  { workers: 8, depth: 4, reads: 2000, threads: 1 },
  { workers: 0, depth: 8, reads: 2000, threads: 2 },
  { workers: 8, depth: 8, reads: 2000, threads: 2 },
  { workers: 24, depth: 4, reads: 1000, threads: 2 },
];

const name = (c: Case) =>
  `${c.workers === 0 ? 'the main thread alone' : `${c.workers} Workers`}, ${c.depth} in flight each, ` +
  `${c.threads === 0 ? 'default pool' : `aioInit({ threads: ${c.threads} })`}`;

describe('stall sweep: every environment completes its reads', () => {
  for (const c of cases) {
    it(
      `${name(c)}: ${c.reads} reads each, bytes checked`,
      () => {
        const entry = distEntryUrl();
        const r = runNode(
          fixture,
          [entry, tempDir(), String(c.workers), String(c.depth), String(c.reads), String(c.threads)],
          {
            timeoutMs: TIMEOUT_MS,
          },
        );
        const progress =
          r.stdout
            .trim()
            .split('\n')
            .filter((l) => l.startsWith('progress'))
            .at(-1) ?? 'no progress line';
        expect(r.timedOut, `stalled: last ${progress}\n${detail(r)}`).toBe(false);
        expectClean(r);
        const out = lastJson<{ done: number; want: number; bad: number; ms: number }>(r);
        console.log(`${name(c)}: ${out.done} reads in ${out.ms} ms`);
        expect(out.done, detail(r)).toBe(Math.max(c.workers, 1) * c.reads);
        expect(out.want).toBe(out.done);
        expect(out.bad, 'reads whose bytes differ from the file').toBe(0);
      },
      TIMEOUT_MS + 10_000,
    );
  }
});
