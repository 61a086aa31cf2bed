// Randomized lifecycle fuzzer (issue 9): fast-check generates programs of
// AioCb submissions (reads, writes and fsyncs on a regular file and a FIFO,
// with SigevThread, SigevNone and SigevSignal on real-time signals 34..37,
// priorities, AbortSignals), lioListio batches, cancels, aborts, drops with
// forced GC, FIFO feeds and yields, for the main environment and up to two
// Workers; each environment ends naturally, by process.exit() or (Workers) by
// terminate() at a random step. Each program runs in a child process
// (fixtures/fuzz-child.mjs), which checks every settlement as it happens:
// exactly once, reads with the file's (or the FIFO's) bytes, errors only
// those allowed (AbortError after an abort, ECANCELED after a cancel, EINVAL
// for syncing a FIFO), and every promise that can still settle settles at a
// natural end. The parent checks that the child ended cleanly (exit status,
// no signal, no warning, no unhandled rejection, no sanitizer report) and
// reads every file back: a reported write is there byte for byte, an
// unreported one is all there or not at all, and the region only read is
// unchanged.
//
// Seed: FUZZ_SEED when set (npm run test:fuzz-asan fixes one), else random;
// it is printed either way. FUZZ_RUNS sets the number of programs (30).
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { detail, expectClean, lastJson, runNode } from '../child.js';
import { distEntryUrl, tempDir } from '../helpers.js';
import { pattern } from './fixtures/pattern.mjs';

const fixture = new URL('./fixtures/fuzz-child.mjs', import.meta.url).pathname;
// As in fixtures/fuzz-child.mjs.
const BLOCK = 512;
const READ_BLOCKS = 16;

type Notify = 'thread' | 'none' | 'signal';
type Step =
  | {
      op: 'submit';
      kind: 'read' | 'write' | 'fsync';
      target: 'file' | 'fifo';
      notify: Notify;
      prio: number;
      abortable: boolean;
      block: number;
    }
  | { op: 'lio'; entries: { kind: 'read' | 'write'; notify: 'thread' | 'none'; block: number }[] }
  | { op: 'cancel' | 'abort' | 'drop' | 'observe'; pick: number }
  | { op: 'feed'; bytes: number }
  | { op: 'tick'; how: 'micro' | 'immediate' | 'timer' };
interface Env {
  steps: Step[];
  end: 'natural' | 'exit' | 'terminate';
  endAt: number;
}
interface Program {
  main: Env;
  workers: Env[];
}

// FUZZ_NOTIFY (e.g. `thread,none`) narrows the notifications, for triage.
const notifies = (process.env.FUZZ_NOTIFY ?? 'thread,none,signal').split(',') as Notify[];
const pickArb = fc.nat(63);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant('submit' as const),
      kind: fc.constantFrom('read' as const, 'write' as const, 'fsync' as const),
      target: fc.constantFrom('file' as const, 'fifo' as const),
      notify: fc.constantFrom(...notifies),
      prio: fc.integer({ min: 0, max: 3 }),
      abortable: fc.boolean(),
      block: fc.nat(READ_BLOCKS - 1),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('lio' as const),
      entries: fc.array(
        fc.record({
          kind: fc.constantFrom('read' as const, 'write' as const),
          notify: fc.constantFrom('thread' as const, 'none' as const),
          block: fc.nat(READ_BLOCKS - 1),
        }),
        { minLength: 1, maxLength: 4 },
      ),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('cancel' as const), pick: pickArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('abort' as const), pick: pickArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('drop' as const), pick: pickArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('observe' as const), pick: pickArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('feed' as const), bytes: fc.integer({ min: 1, max: 24 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('tick' as const),
      how: fc.constantFrom('micro' as const, 'immediate' as const, 'timer' as const),
    }),
  },
);

function envArb(ends: Env['end'][]): fc.Arbitrary<Env> {
  return fc
    .record({
      steps: fc.array(stepArb, { minLength: 1, maxLength: 24 }),
      end: fc.constantFrom(...ends),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
    })
    .map(({ steps, end, at }) => ({ steps, end, endAt: Math.min(steps.length, Math.floor(at * (steps.length + 1))) }));
}

const programArb: fc.Arbitrary<Program> = fc.record({
  main: envArb(['natural', 'natural', 'exit']),
  workers: fc.array(envArb(['natural', 'exit', 'terminate']), { maxLength: 2 }),
});

/** How many blocks each environment's program writes (in submission order). */
function writesOf(env: Env): number {
  let n = 0;
  for (const s of env.steps) {
    if (s.op === 'submit' && s.kind === 'write') n++;
    if (s.op === 'lio') n += s.entries.filter((e) => e.kind === 'write').length;
  }
  return n;
}

interface Result {
  bad: string[];
  wrote: number[][];
  done: number[];
  collected: number;
  workerExits: Record<string, number>;
}

const stats = { programs: 0, workers: 0, writesReported: 0, envsDone: 0, collectedAioCbs: 0, ms: 0 };

function runProgram(entry: string, program: Program): void {
  const dir = tempDir();
  const programFile = path.join(dir, 'program.json');
  fs.writeFileSync(programFile, JSON.stringify(program));
  // Freed memory is scribbled over and glibc's tcache is off, so that a use
  // after free shows (as in teardown.test.ts).
  const r = runNode(fixture, [entry, dir, programFile], {
    timeoutMs: 45_000,
    nodeArgs: ['--expose-gc'],
    env: { MALLOC_PERTURB_: '165', GLIBC_TUNABLES: 'glibc.malloc.tcache_count=0' },
  });
  const where = `program ${JSON.stringify(program)}\n${detail(r)}`;
  const out = lastJson<Result>(r);
  stats.programs++;
  stats.workers += program.workers.length;
  stats.writesReported += out.wrote.reduce((a, w) => a + w.length, 0);
  stats.envsDone += out.done.length;
  stats.collectedAioCbs += out.collected;
  stats.ms += r.ms;
  expect(out.bad, where).toEqual([]);
  expectClean(r);
  const envs = [program.main, ...program.workers];
  envs.forEach((env, ix) => {
    const file = fs.readFileSync(path.join(dir, `file-${ix}`));
    const readRegion = pattern(1000 + ix, READ_BLOCKS * BLOCK);
    expect(file.subarray(0, READ_BLOCKS * BLOCK).equals(readRegion), `env ${ix}: the region only read changed`).toBe(
      true,
    );
    const reported = new Set(out.wrote[ix]);
    const zero = Buffer.alloc(BLOCK);
    for (let w = 0; w < writesOf(env); w++) {
      const at = (READ_BLOCKS + w) * BLOCK;
      const block = Buffer.concat([file.subarray(at, at + BLOCK), zero]).subarray(0, BLOCK);
      const want = pattern(ix * 100000 + w + 1, BLOCK);
      if (reported.has(w)) {
        if (!block.equals(want))
          expect.fail(`env ${ix}: write ${w} was reported done but is not in the file\n${where}`);
      } else if (!block.equals(want) && !block.equals(zero)) {
        expect.fail(`env ${ix}: write ${w} is torn or foreign\n${where}`);
      }
    }
  });
  // A natural end of the main environment means every environment reported.
  if (program.main.end === 'natural' && program.main.endAt >= program.main.steps.length) {
    expect(out.done, where).toContain(0);
  }
}

describe('lifecycle fuzzer', () => {
  const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;
  const numRuns = Number(process.env.FUZZ_RUNS ?? 30);

  it(`${numRuns} random programs over the main thread and Workers: one settlement each, data intact, clean exit`, () => {
    console.log(`lifecycle fuzzer: seed ${seed} (FUZZ_SEED=${seed} replays it), ${numRuns} runs`);
    const entry = distEntryUrl();
    let runs = 0;
    fc.assert(
      fc.property(programArb, (program) => {
        runs++;
        runProgram(entry, program);
      }),
      // No shrinking: each run is a child process, and the failing program
      // is printed whole.
      { seed, numRuns, endOnFailure: true },
    );
    console.log(`lifecycle fuzzer: ${JSON.stringify(stats)}`);
    expect(runs).toBe(numRuns);
  }, 600_000);
});
