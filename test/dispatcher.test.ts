// The completion dispatcher never loses a record (issue 9, point 4). It used
// to accept as `signal` any object with `aborted` and `addEventListener`; when
// that object's removeEventListener threw while a completion settled, the
// loop over the batch's records stopped and no other completion of the batch
// was ever delivered (0 of 6 promises settled). Now an AbortSignal option must
// be a real AbortSignal (TypeError up front, nothing submitted).
//
// The six-read case runs in a child process: on the old code the throw
// escapes from the dispatcher as an uncaught exception.
import { getEventListeners } from 'node:events';
import { beforeAll, describe, expect, it } from 'vitest';
import { AbortError, AioCb } from '../src/index.js';
import { detail, expectClean, lastJson, runModule } from './child.js';
import { blockingFifo, distEntryUrl, rejection, tempFile, waitUntilReading } from './helpers.js';
import { within } from './stress/stress-helpers.js';

const CONTENTS = 'abcdefghijklmnopqrstuvwx';
let entry = '';
beforeAll(() => {
  entry = distEntryUrl();
}, 120_000);

/** Not an AbortSignal, though it looks like one; removeEventListener throws. */
function fakeSignal(): AbortSignal {
  return {
    aborted: false,
    reason: undefined,
    addEventListener() {},
    removeEventListener() {
      throw new Error('removeEventListener threw');
    },
    dispatchEvent: () => true,
  } as unknown as AbortSignal;
}

describe('an AbortSignal option', () => {
  it('an object that only looks like an AbortSignal: TypeError, and nothing is submitted', async () => {
    const { fd } = tempFile(CONTENTS);
    const buf = Buffer.alloc(4, 0x2e);
    const cb = AioCb.fromMutSlice(fd, 0, buf);
    let err: unknown;
    try {
      // Bounded: with the look-alike accepted, the read would settle only
      // through the dispatcher, where its removeEventListener throws.
      await within(cb.read({ signal: fakeSignal() }), 3_000, 'read() with a look-alike signal');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TypeError);
    expect(cb.inProgress).toBe(false);
    expect(buf.toString()).toBe('....');
    // The block is still usable.
    await expect(cb.read()).resolves.toBe(4);
    expect(buf.toString()).toBe('abcd');
  });

  it('a real AbortSignal, not aborted: the read completes and its listener is removed', async () => {
    const { fd } = tempFile(CONTENTS);
    const ac = new AbortController();
    const buf = Buffer.alloc(4);
    await expect(AioCb.fromMutSlice(fd, 4, buf).read({ signal: ac.signal })).resolves.toBe(4);
    expect(buf.toString()).toBe('efgh');
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('a real AbortSignal aborted while the read is queued: AbortError, the buffer untouched', async () => {
    const fifo = blockingFifo();
    const running = AioCb.fromMutSlice(fifo.fd, 0, Buffer.alloc(1)).read();
    await waitUntilReading(fifo.fd);
    const ac = new AbortController();
    const buf = Buffer.alloc(4, 0x2e);
    const queued = AioCb.fromMutSlice(fifo.fd, 0, buf).read({ signal: ac.signal });
    const reason = new Error('stop');
    ac.abort(reason);
    const err = await rejection(queued);
    expect(err).toBeInstanceOf(AbortError);
    expect(err.cause).toBe(reason);
    expect(buf.toString()).toBe('....');
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    fifo.release(1);
    await expect(running).resolves.toBe(1);
  });
});

describe('six reads completing together, one with a look-alike signal', () => {
  it('every one settles: five with their bytes, the look-alike with TypeError', () => {
    const { path } = tempFile(CONTENTS);
    const r = runModule(
      entry,
      `
      const fd = fs.openSync(${JSON.stringify(path)}, 'r');
      const fake = {
        aborted: false,
        addEventListener() {},
        removeEventListener() { throw new Error('removeEventListener threw'); },
      };
      const bufs = [0, 1, 2, 3, 4, 5].map(() => Buffer.alloc(4, 0x2e));
      const outcomes = [];
      const settled = bufs.map((buf, i) => {
        outcomes[i] = { settled: 0 };
        let p;
        try {
          p = m.AioCb.fromMutSlice(fd, i * 4, buf).read(i === 2 ? { signal: fake } : undefined);
        } catch (e) {
          p = Promise.reject(e);
        }
        return p.then(
          (n) => { outcomes[i].settled++; outcomes[i].ok = n; },
          (e) => { outcomes[i].settled++; outcomes[i].error = e?.constructor?.name; },
        );
      });
      const timeout = new Promise((r) => setTimeout(r, 3000));
      await Promise.race([Promise.all(settled), timeout]);
      console.log(JSON.stringify({ outcomes, bytes: bufs.map(String) }));
      process.exit(0);
      `,
      { timeoutMs: 15_000 },
    );
    const out = lastJson<{ outcomes: { settled: number; ok?: number; error?: string }[]; bytes: string[] }>(r);
    expect(out.outcomes, detail(r)).toEqual([
      { settled: 1, ok: 4 },
      { settled: 1, ok: 4 },
      { settled: 1, error: 'TypeError' },
      { settled: 1, ok: 4 },
      { settled: 1, ok: 4 },
      { settled: 1, ok: 4 },
    ]);
    expect(out.bytes).toEqual(['abcd', 'efgh', '....', 'mnop', 'qrst', 'uvwx']);
    expectClean(r);
  });
});
