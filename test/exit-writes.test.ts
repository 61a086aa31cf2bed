// process.exit() with writes in flight (issue 9, point 9). Node 20 runs no
// environment cleanup hook on process.exit() or an uncaught exception, so
// before the redesign the writes a program had submitted were dropped: tick
// batched ones never reached libc. The contract now: an 'exit' listener
// installed by the library waits, bounded (about 2 s), for every request the
// environment submitted, so every write submitted before process.exit() or an
// uncaught exception is in the file. The parent reads the file back byte for
// byte.
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { detail, expectClean, expectQuietStderr, runModule } from './child.js';
import { distEntryUrl, tempDir } from './helpers.js';
import { pattern } from './stress/fixtures/pattern.mjs';

const BLOCK = 4096;
// O_DSYNC writes take about 0.2 ms each here: well inside the 2 s bound.
const COUNT = 256;
let entry = '';
beforeAll(() => {
  entry = distEntryUrl();
}, 120_000);

const patternUrl = new URL('./stress/fixtures/pattern.mjs', import.meta.url).href;

/** Submits COUNT writes (SigevThread and SigevNone alternately), none awaited, then `end`. */
function submitThen(file: string, dsync: boolean, end: string): string {
  return `
    const { pattern } = await import(${JSON.stringify(patternUrl)});
    const fd = fs.openSync(${JSON.stringify(file)}, fs.constants.O_RDWR${dsync ? ' | fs.constants.O_DSYNC' : ''});
    for (let i = 0; i < ${COUNT}; i++) {
      const sigev = i % 2 === 0 ? m.SigevThread : m.SigevNone;
      m.AioCb.fromSlice(fd, i * ${BLOCK}, pattern(i + 1, ${BLOCK}), 0, sigev).write().catch(() => {});
    }
    console.log('SUBMITTED');
    ${end}
  `;
}

function expectAllWritten(file: string, what: string): void {
  const contents = fs.readFileSync(file);
  expect(contents.length).toBe(COUNT * BLOCK);
  const missing: number[] = [];
  for (let i = 0; i < COUNT; i++) {
    if (!contents.subarray(i * BLOCK, (i + 1) * BLOCK).equals(pattern(i + 1, BLOCK))) missing.push(i);
  }
  expect(missing, `${what}: ${missing.length} of ${COUNT} blocks not written (first: ${missing.slice(0, 10)})`).toEqual(
    [],
  );
}

describe('writes submitted right before the process ends are all in the file', () => {
  for (const dsync of [false, true]) {
    const mode = dsync ? 'O_DSYNC' : 'buffered';
    const fresh = () => {
      const file = path.join(tempDir(), 'data');
      fs.writeFileSync(file, Buffer.alloc(COUNT * BLOCK));
      return file;
    };

    it(`process.exit(0) in the same tick (${mode})`, () => {
      const file = fresh();
      const r = runModule(entry, submitThen(file, dsync, 'process.exit(0);'), { timeoutMs: 15_000 });
      expect(r.stdout, detail(r)).toContain('SUBMITTED');
      expectAllWritten(file, detail(r));
      expectClean(r);
    });

    it(`process.exit(5) a tick later (${mode})`, () => {
      const file = fresh();
      const r = runModule(entry, submitThen(file, dsync, 'setImmediate(() => process.exit(5));'), {
        timeoutMs: 15_000,
      });
      expectAllWritten(file, detail(r));
      expectClean(r, 5);
    });

    it(`an uncaught exception in the same tick (${mode})`, () => {
      const file = fresh();
      const r = runModule(entry, submitThen(file, dsync, "throw new Error('boom after submitting');"), {
        timeoutMs: 15_000,
      });
      expect(r.stderr, detail(r)).toContain('boom after submitting');
      expectAllWritten(file, detail(r));
      expect(r.timedOut, detail(r)).toBe(false);
      expect({ signal: r.signal, status: r.status }, detail(r)).toEqual({ signal: null, status: 1 });
      expectQuietStderr(r);
    });

    it(`an uncaught exception from a timer (${mode})`, () => {
      const file = fresh();
      const r = runModule(
        entry,
        submitThen(file, dsync, "setTimeout(() => { throw new Error('late boom after submitting'); }, 0);"),
        { timeoutMs: 15_000 },
      );
      expect(r.stderr, detail(r)).toContain('late boom after submitting');
      expectAllWritten(file, detail(r));
      expect({ signal: r.signal, status: r.status }, detail(r)).toEqual({ signal: null, status: 1 });
      expectQuietStderr(r);
    });
  }
});
