// Teardown with a collected request in flight (issue 9, point 2). A SigevNone
// or SigevSignal AioCb dropped and collected while its read blocks on a FIFO
// is held only by the engine; the FIFO is then written, so the read
// completes just as its environment ends. Before the engine redesign the
// teardown freed that request while it was still on the live list and then
// walked the list: SIGSEGV every time under MALLOC_PERTURB_ with glibc's
// tcache off. A completion signalled with SIGRTMIN and no JavaScript listener
// killed the process with that signal.
//
// Each scenario runs 20 times, each run a child process
// (fixtures/teardown-child.mjs). The same file runs under the sanitizers:
// `npm run test:teardown-asan`; children inherit LD_PRELOAD and ASAN_OPTIONS
// from test/asan/run.sh, and an ASan report on stderr fails the run.
import { describe, expect, it } from 'vitest';
import { type ChildRun, detail, expectClean, runNode } from '../child.js';
import { distEntryUrl, tempDir } from '../helpers.js';

const fixture = new URL('./fixtures/teardown-child.mjs', import.meta.url).pathname;
const RUNS = 20;
const MALLOC_ENV = { MALLOC_PERTURB_: '165', GLIBC_TUNABLES: 'glibc.malloc.tcache_count=0' };

describe('an environment ends while a collected request completes', () => {
  for (const where of ['main', 'worker-exit', 'worker-terminate'] as const) {
    for (const notify of ['none', 'signal'] as const) {
      it(`${where}, ${notify === 'none' ? 'SigevNone' : 'SigevSignal(SIGRTMIN)'}: ${RUNS} runs exit 0`, () => {
        const entry = distEntryUrl();
        const runs: ChildRun[] = [];
        for (let i = 0; i < RUNS; i++) {
          runs.push(
            runNode(fixture, [entry, tempDir(), where, notify], {
              timeoutMs: 15_000,
              nodeArgs: ['--expose-gc'],
              env: MALLOC_ENV,
            }),
          );
        }
        const outcome = (r: ChildRun) =>
          r.timedOut ? 'timeout' : r.signal !== null ? `signal ${r.signal || '(real-time)'}` : `status ${r.status}`;
        const tally: Record<string, number> = {};
        for (const r of runs) tally[outcome(r)] = (tally[outcome(r)] ?? 0) + 1;
        const bad = runs.find((r) => r.timedOut || r.signal !== null || r.status !== 0);
        expect(tally, `outcomes of ${RUNS} runs; the first bad one:\n${bad ? detail(bad) : ''}`).toEqual({
          'status 0': RUNS,
        });
        for (const r of runs) {
          expectClean(r);
          expect(r.stdout, detail(r)).toMatch(/^(collected|kept alive)$/m);
          expect(r.stdout, detail(r)).toMatch(/DONE\n$/);
        }
        const collected = runs.filter((r) => /^collected$/m.test(r.stdout)).length;
        console.log(`${where}, ${notify}: the AioCb was collected in flight in ${collected} of ${RUNS} runs`);
      }, 120_000);
    }
  }
});
