// Model-based property test (issue 5): random sequences of open, read,
// write, batch, sync, abort and close on AioFile handles of one file, run
// against an in-memory model of the file (a Buffer). Each step is awaited
// before the next, so the order is total and the model is exact:
// - a read that resolves returns min(len, size - pos) bytes, equal to the
//   model's, and leaves the rest of its buffer untouched;
// - a write that resolves is applied (extending the file with zeros if it
//   starts past the end); a write that rejects with AbortError is not;
// - batch entries take effect in list order (one descriptor, fanout 1);
// - at the end the file equals the model byte for byte.
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AbortError, type AioFile, type BatchOp, open } from '../../src/index.js';
import { readAt, tempDir, writeAt } from '../helpers.js';
import { pattern } from './fixtures/pattern.mjs';

type Region = { pos: number; len: number; big: boolean };
type Entry = ({ kind: 'read' } & Region) | ({ kind: 'write'; seed: number } & Region);
type Step =
  | { op: 'open'; concurrency: number }
  | { op: 'close'; h: number }
  | ({ op: 'read'; h: number } & Region)
  | ({ op: 'write'; h: number; seed: number } & Region)
  | { op: 'batch'; h: number; entries: Entry[] }
  | { op: 'sync'; h: number; data: boolean }
  | { op: 'abort'; h: number; target: Entry; when: 'sync' | 'microtask' }
  | { op: 'abortBatch'; h: number; entries: Entry[]; when: 'sync' | 'microtask' };

const FILL = 0xee; // read buffers start with this; bytes past the result must keep it

const region = fc.record({
  // Mostly within the first 16 KiB, sometimes far past the end (sparse).
  pos: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: 16384 }) }, fc.integer({ min: 0, max: 1 << 20 })),
  len: fc.integer({ min: 1, max: 4096 }),
  big: fc.boolean(), // pass the position as a bigint
});
const seed = fc.integer({ min: 1, max: 2 ** 31 - 1 });
const entry: fc.Arbitrary<Entry> = fc.oneof(
  region.map((r) => ({ kind: 'read' as const, ...r })),
  fc.tuple(region, seed).map(([r, s]) => ({ kind: 'write' as const, seed: s, ...r })),
);
const handle = fc.nat(7); // taken modulo the open handles
const when = fc.constantFrom('sync' as const, 'microtask' as const);
const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('open' as const), concurrency: fc.integer({ min: 1, max: 8 }) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('close' as const), h: handle }) },
  { weight: 4, arbitrary: fc.tuple(handle, region).map(([h, r]) => ({ op: 'read' as const, h, ...r })) },
  {
    weight: 5,
    arbitrary: fc.tuple(handle, region, seed).map(([h, r, s]) => ({ op: 'write' as const, h, seed: s, ...r })),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('batch' as const),
      h: handle,
      entries: fc.array(entry, { minLength: 0, maxLength: 6 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('sync' as const), h: handle, data: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('abort' as const), h: handle, target: entry, when }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('abortBatch' as const),
      h: handle,
      entries: fc.array(entry, { minLength: 1, maxLength: 6 }),
      when,
    }),
  },
);

/** The file as it must be. */
class Model {
  data: Buffer;
  constructor(initial: Buffer) {
    this.data = Buffer.from(initial);
  }
  write(pos: number, bytes: Buffer): void {
    const end = pos + bytes.length;
    if (end > this.data.length) this.data = Buffer.concat([this.data, Buffer.alloc(end - this.data.length)]);
    bytes.copy(this.data, pos);
  }
  /** What a read of `len` bytes at `pos` must return. */
  read(pos: number, len: number): Buffer {
    return this.data.subarray(Math.min(pos, this.data.length), Math.min(pos + len, this.data.length));
  }
}

type Outcome = { ok: true; n: number } | { ok: false; e: unknown };
const outcome = (p: Promise<number>): Promise<Outcome> =>
  p.then(
    (n) => ({ ok: true as const, n }),
    (e: unknown) => ({ ok: false as const, e }),
  );

function describeStep(s: Step): string {
  return JSON.stringify(s);
}

/** Checks one read or write result against the model and applies it. */
function check(model: Model, e: Entry, buf: Buffer, r: Outcome, where: string, mayAbort: boolean): void {
  if (!r.ok) {
    if (!mayAbort || !(r.e instanceof AbortError)) throw new Error(`${where}: rejected with ${String(r.e)}`);
    // Not applied: a read leaves its buffer as it was.
    if (e.kind === 'read' && !buf.equals(Buffer.alloc(buf.length, FILL))) {
      throw new Error(`${where}: an aborted read changed its buffer`);
    }
    return;
  }
  if (e.kind === 'write') {
    if (r.n !== e.len) throw new Error(`${where}: wrote ${r.n} of ${e.len} bytes`);
    model.write(e.pos, buf);
    return;
  }
  const want = model.read(e.pos, e.len);
  if (r.n !== want.length) throw new Error(`${where}: read ${r.n} bytes, the model has ${want.length}`);
  if (!buf.subarray(0, r.n).equals(want)) throw new Error(`${where}: read bytes differ from the model`);
  if (!buf.subarray(r.n).equals(Buffer.alloc(buf.length - r.n, FILL))) {
    throw new Error(`${where}: the read touched bytes past its result`);
  }
}

function bufferFor(e: Entry): Buffer {
  return e.kind === 'write' ? pattern(e.seed, e.len) : Buffer.alloc(e.len, FILL);
}

function batchOp(e: Entry, buf: Buffer): BatchOp {
  return { op: e.kind, buffer: buf, position: e.big ? BigInt(e.pos) : e.pos };
}

async function run(file: string, initial: Buffer, steps: Step[]): Promise<void> {
  fs.writeFileSync(file, initial);
  const model = new Model(initial);
  const handles: AioFile[] = [];
  const pick = (h: number) => handles[h % handles.length] as AioFile;
  try {
    handles.push(await open(file, 'r+', 0o666, { concurrency: 4 }));
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i] as Step;
      const where = `step ${i} ${describeStep(s)}`;
      if (s.op === 'open') {
        handles.push(await open(file, 'r+', 0o666, { concurrency: s.concurrency }));
        continue;
      }
      if (handles.length === 0) handles.push(await open(file, 'r+'));
      const f = pick(s.h);
      switch (s.op) {
        case 'close': {
          handles.splice(s.h % handles.length, 1);
          await f.close();
          break;
        }
        case 'read':
        case 'write': {
          const e: Entry = s.op === 'read' ? { kind: 'read', ...s } : { kind: 'write', ...s };
          const buf = bufferFor(e);
          const pos = e.big ? BigInt(e.pos) : e.pos;
          const r = await outcome(e.kind === 'read' ? readAt(f, buf, pos) : writeAt(f, buf, pos));
          check(model, e, buf, r, where, false);
          break;
        }
        case 'batch': {
          const bufs = s.entries.map(bufferFor);
          const rs = await Promise.all(f.batch(s.entries.map((e, k) => batchOp(e, bufs[k] as Buffer))).map(outcome));
          for (const [k, e] of s.entries.entries()) {
            check(model, e, bufs[k] as Buffer, rs[k] as Outcome, `${where} entry ${k}`, false);
          }
          break;
        }
        case 'sync': {
          await (s.data ? f.datasync() : f.sync());
          break;
        }
        case 'abort': {
          const e = s.target;
          const buf = bufferFor(e);
          const ac = new AbortController();
          const pos = e.big ? BigInt(e.pos) : e.pos;
          const p = outcome(
            e.kind === 'read'
              ? readAt(f, buf, pos, { signal: ac.signal })
              : writeAt(f, buf, pos, { signal: ac.signal }),
          );
          if (s.when === 'sync') ac.abort();
          else queueMicrotask(() => ac.abort());
          check(model, e, buf, await p, where, true);
          break;
        }
        case 'abortBatch': {
          const bufs = s.entries.map(bufferFor);
          const ac = new AbortController();
          const ps = f
            .batch(
              s.entries.map((e, k) => batchOp(e, bufs[k] as Buffer)),
              { signal: ac.signal },
            )
            .map(outcome);
          if (s.when === 'sync') ac.abort();
          else queueMicrotask(() => ac.abort());
          const rs = await Promise.all(ps);
          for (const [k, e] of s.entries.entries()) {
            check(model, e, bufs[k] as Buffer, rs[k] as Outcome, `${where} entry ${k}`, true);
          }
          break;
        }
      }
    }
  } finally {
    await Promise.all(handles.map((h) => h.close()));
  }
  const actual = fs.readFileSync(file);
  if (!actual.equals(model.data)) {
    let at = 0;
    while (at < Math.min(actual.length, model.data.length) && actual[at] === model.data[at]) at++;
    throw new Error(
      `the file (${actual.length} bytes) differs from the model (${model.data.length} bytes) from byte ${at}`,
    );
  }
}

describe('AioFile against an in-memory model', () => {
  it('1,000 random sequences of up to 20 steps leave the file equal to the model', async () => {
    const dir = tempDir();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 8192 }),
        fc.array(step, { minLength: 1, maxLength: 20 }),
        async (initial, steps) => {
          const file = path.join(dir, `model-${n++}`);
          try {
            await run(file, Buffer.from(initial), steps);
          } finally {
            fs.rmSync(file, { force: true });
          }
        },
      ),
      { numRuns: 1000, ...(process.env.STRESS_SEED ? { seed: Number(process.env.STRESS_SEED) } : {}) },
    );
    expect(n).toBeGreaterThanOrEqual(1000);
  }, 170_000);
});
