// Bad input, table-driven, for every constructor and function: the wrong
// type is a TypeError, the right type with a wrong value a RangeError, each
// thrown before anything reaches C, with a message naming the argument.
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  AioCb,
  AioFsyncMode,
  aioCancelAll,
  aioInit,
  aioSuspend,
  LioMode,
  LioOpcode,
  lioListio,
  SigevNone,
  SigevSignal,
  SigevThread,
} from '../src/index.js';
import { rejection, tempFile } from './helpers.js';

const INITIAL = 'abcdef123456';
type ErrorClass = typeof TypeError | typeof RangeError;
type Case = [label: string, value: unknown, cls: ErrorClass];

/** What `fn` throws; fails the test if it returns. */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
}

function expectError(err: Error, cls: ErrorClass, names: RegExp): void {
  // Exactly the class: a RangeError is not good enough where a TypeError is due.
  expect(err.constructor).toBe(cls);
  expect(err.message).toMatch(names);
}

/** A view over an ArrayBuffer that has been transferred away. */
function detachedView(): Uint8Array {
  const ab = new ArrayBuffer(8);
  const view = new Uint8Array(ab);
  structuredClone(ab, { transfer: [ab] });
  expect(ab.byteLength).toBe(0);
  return view;
}

function detachedArrayBuffer(): ArrayBuffer {
  const ab = new ArrayBuffer(8);
  structuredClone(ab, { transfer: [ab] });
  return ab;
}

const badFd: Case[] = [
  ["'3'", '3', TypeError],
  ['3n', 3n, TypeError],
  ['null', null, TypeError],
  ['undefined', undefined, TypeError],
  ['{}', {}, TypeError],
  ['-1', -1, RangeError],
  ['1.5', 1.5, RangeError],
  ['NaN', Number.NaN, RangeError],
  ['Infinity', Number.POSITIVE_INFINITY, RangeError],
  ['2 ** 31', 2 ** 31, RangeError],
  ['MAX_SAFE_INTEGER', Number.MAX_SAFE_INTEGER, RangeError],
];

const badOffset: Case[] = [
  ["'0'", '0', TypeError],
  ['null', null, TypeError],
  ['undefined', undefined, TypeError],
  ['{}', {}, TypeError],
  ['-1', -1, RangeError],
  ['1.5', 1.5, RangeError],
  ['NaN', Number.NaN, RangeError],
  ['Infinity', Number.POSITIVE_INFINITY, RangeError],
  ['2 ** 53 (unsafe)', 2 ** 53, RangeError],
  ['-1n', -1n, RangeError],
  ['2n ** 63n', 2n ** 63n, RangeError],
  ['2n ** 64n', 2n ** 64n, RangeError],
];

const badPrio: Case[] = [
  ["'0'", '0', TypeError],
  ['null', null, TypeError],
  ['0n', 0n, TypeError],
  ['-1', -1, RangeError],
  ['1.5', 1.5, RangeError],
  ['NaN', Number.NaN, RangeError],
  ['2 ** 31', 2 ** 31, RangeError],
];

const badOpcode: Case[] = [
  ["'LIO_READ'", 'LIO_READ', TypeError],
  ['null', null, TypeError],
  ['99', 99, RangeError],
  ['-5', -5, RangeError],
  ['1.5', 1.5, RangeError],
];

const badSigev: Case[] = [
  ["'thread'", 'thread', TypeError],
  ['null', null, TypeError],
  ['{}', {}, TypeError],
  ["{ kind: 'bogus' }", { kind: 'bogus' }, TypeError],
  ['a function', () => {}, TypeError],
];

const badView: [string, () => unknown][] = [
  ["'abc'", () => 'abc'],
  ['an array', () => [1, 2, 3]],
  ['an ArrayBuffer', () => new ArrayBuffer(4)],
  ['null', () => null],
  ['{}', () => ({})],
];

// [name, build(args), valid args, argument positions]
interface Ctor {
  name: string;
  make: (args: unknown[]) => AioCb;
  args: () => unknown[];
  pos: Partial<Record<'fd' | 'offset' | 'buf' | 'ab' | 'byteOffset' | 'length' | 'prio' | 'sigev' | 'opcode', number>>;
}

function ctors(fd: number): Ctor[] {
  const slice = (name: 'fromMutSlice' | 'fromSlice' | 'fromBoxedSlice' | 'fromBoxedMutSlice'): Ctor => ({
    name,
    make: (a) => (AioCb[name] as (...x: unknown[]) => AioCb)(...a),
    args: () => [fd, 0, Buffer.alloc(4), 0, SigevNone, LioOpcode.LIO_NOP],
    pos: { fd: 0, offset: 1, buf: 2, prio: 3, sigev: 4, opcode: 5 },
  });
  const ptr = (name: 'fromPtr' | 'fromMutPtr'): Ctor => ({
    name,
    make: (a) => (AioCb[name] as (...x: unknown[]) => AioCb)(...a),
    args: () => [fd, 0, new ArrayBuffer(8), 0, 8, 0, SigevNone, LioOpcode.LIO_NOP],
    pos: { fd: 0, offset: 1, ab: 2, byteOffset: 3, length: 4, prio: 5, sigev: 6, opcode: 7 },
  });
  return [
    {
      name: 'fromFd',
      make: (a) => (AioCb.fromFd as (...x: unknown[]) => AioCb)(...a),
      args: () => [fd, 0, SigevNone],
      pos: { fd: 0, prio: 1, sigev: 2 },
    },
    slice('fromMutSlice'),
    slice('fromSlice'),
    slice('fromBoxedSlice'),
    slice('fromBoxedMutSlice'),
    ptr('fromPtr'),
    ptr('fromMutPtr'),
  ];
}

// The tables need a real descriptor only so that the other arguments are valid.
const FD = 0;
const ctorNames = ctors(FD).map((c) => c.name);

function withArg(c: Ctor, key: keyof Ctor['pos'], value: unknown): unknown[] {
  const a = c.args();
  a[c.pos[key] as number] = value;
  return a;
}

describe.each(ctorNames)('AioCb.%s', (name) => {
  const c = ctors(FD).find((x) => x.name === name) as Ctor;

  it('accepts the valid arguments used as a base', () => {
    expect(c.make(c.args())).toBeInstanceOf(AioCb);
  });

  it.each(badFd)('fd %s: %O naming fd', (_l, value, cls) => {
    expectError(
      thrown(() => c.make(withArg(c, 'fd', value))),
      cls,
      /\bfd\b/,
    );
  });

  it.each(badPrio)('prio %s: %O naming prio', (_l, value, cls) => {
    expectError(
      thrown(() => c.make(withArg(c, 'prio', value))),
      cls,
      /\bprio\b/,
    );
  });

  it.each(badSigev)('sigevNotify %s: %O naming sigevNotify', (_l, value, cls) => {
    expectError(
      thrown(() => c.make(withArg(c, 'sigev', value))),
      cls,
      /sigevNotify/,
    );
  });

  if (c.pos.offset !== undefined) {
    it.each(badOffset)('offset %s: %O naming offset', (_l, value, cls) => {
      expectError(
        thrown(() => c.make(withArg(c, 'offset', value))),
        cls,
        /\boffset\b/,
      );
    });

    it('accepts the largest offsets', () => {
      expect(c.make(withArg(c, 'offset', Number.MAX_SAFE_INTEGER)).offset).toBe(Number.MAX_SAFE_INTEGER);
      expect(c.make(withArg(c, 'offset', 2n ** 63n - 1n)).offset).toBe(2n ** 63n - 1n);
    });
  }

  if (c.pos.opcode !== undefined) {
    it.each(badOpcode)('opcode %s: %O naming opcode', (_l, value, cls) => {
      expectError(
        thrown(() => c.make(withArg(c, 'opcode', value))),
        cls,
        /\bopcode\b/,
      );
    });
  }

  if (c.pos.buf !== undefined) {
    it.each(badView)('buf %s: TypeError naming buf', (_l, value) => {
      expectError(
        thrown(() => c.make(withArg(c, 'buf', value()))),
        TypeError,
        /\bbuf\b/,
      );
    });

    it('a detached buf: TypeError naming buf', () => {
      expectError(
        thrown(() => c.make(withArg(c, 'buf', detachedView()))),
        TypeError,
        /\bbuf\b.*detached/,
      );
    });
  }

  if (c.pos.ab !== undefined) {
    it.each([
      ['a Uint8Array', () => new Uint8Array(8)],
      ["'abc'", () => 'abc'],
      ['null', () => null],
      ['{}', () => ({})],
    ])('arrayBuffer %s: TypeError naming arrayBuffer', (_l, value) => {
      expectError(
        thrown(() => c.make(withArg(c, 'ab', value()))),
        TypeError,
        /\barrayBuffer\b/,
      );
    });

    it('a detached arrayBuffer: TypeError naming arrayBuffer', () => {
      expectError(
        thrown(() => c.make(withArg(c, 'ab', detachedArrayBuffer()))),
        TypeError,
        /\barrayBuffer\b.*detached/,
      );
    });

    it.each([
      ['byteOffset', "'0'", '0', TypeError],
      ['byteOffset', '-1', -1, RangeError],
      ['byteOffset', '0.5', 0.5, RangeError],
      ['length', "'8'", '8', TypeError],
      ['length', '-1', -1, RangeError],
      ['length', 'NaN', Number.NaN, RangeError],
    ] as const)('%s %s: %O naming it', (key, _l, value, cls) => {
      expectError(
        thrown(() => c.make(withArg(c, key, value))),
        cls,
        new RegExp(`\\b${key}\\b`),
      );
    });

    it('a region past the end: RangeError', () => {
      const a = c.args();
      a[3] = 4;
      a[4] = 5;
      expectError(
        thrown(() => c.make(a)),
        RangeError,
        /out of bounds/,
      );
    });
  }
});

describe('SigevSignal', () => {
  it.each([
    ["'SIGBOGUS'", 'SIGBOGUS', TypeError],
    ["'sigusr2' (names are case-sensitive)", 'sigusr2', TypeError],
    ["''", '', TypeError],
    ['1.5', 1.5, TypeError],
    ['null', null, TypeError],
    ['10n', 10n, TypeError],
    ['0', 0, RangeError],
    ['-1', -1, RangeError],
    ['65 (above SIGRTMAX)', 65, RangeError],
    ['1000', 1000, RangeError],
    ["'SIGKILL'", 'SIGKILL', RangeError],
    ['SIGKILL as a number', osConstants.signals.SIGKILL, RangeError],
    ["'SIGSTOP'", 'SIGSTOP', RangeError],
    ['SIGSTOP as a number', osConstants.signals.SIGSTOP, RangeError],
    ['32 (glibc thread cancellation)', 32, RangeError],
    ['33 (glibc set*id)', 33, RangeError],
    ["'SIGSEGV'", 'SIGSEGV', RangeError],
    ["'SIGBUS'", 'SIGBUS', RangeError],
    ["'SIGFPE'", 'SIGFPE', RangeError],
    ["'SIGILL'", 'SIGILL', RangeError],
    ["'SIGUSR1' (Node's inspector)", 'SIGUSR1', RangeError],
  ] as Case[])('signal %s: %O naming the signal', (_l, value, cls) => {
    expectError(
      thrown(() => SigevSignal(value as never)),
      cls,
      /SigevSignal: .*(signal|SIGKILL)/,
    );
  });

  it.each([
    ['1.5', 1.5],
    ['2 ** 31', 2 ** 31],
    ['-(2 ** 31) - 1', -(2 ** 31) - 1],
    ['NaN', Number.NaN],
    ["'1'", '1'],
  ])('value %s: RangeError naming value', (_l, value) => {
    expectError(
      thrown(() => SigevSignal('SIGUSR2', value as never)),
      RangeError,
      /\bvalue\b/,
    );
  });

  it('accepts a name, a number and the 32-bit value range', () => {
    const u2 = osConstants.signals.SIGUSR2;
    expect(SigevSignal('SIGUSR2')).toEqual({ kind: 'signal', signal: u2, value: 0 });
    expect(SigevSignal(u2, -(2 ** 31))).toEqual({ kind: 'signal', signal: u2, value: -(2 ** 31) });
    expect(SigevSignal(u2, 2 ** 31 - 1)).toEqual({ kind: 'signal', signal: u2, value: 2 ** 31 - 1 });
  });

  it('a forged signal sigevent goes through the same checks', () => {
    const { fd } = tempFile(INITIAL);
    const forged = { kind: 'signal', signal: osConstants.signals.SIGKILL, value: 0 };
    expectError(
      thrown(() => AioCb.fromFd(fd, 0, forged as never)),
      RangeError,
      /SIGKILL/,
    );
  });
});

describe('AioCb methods', () => {
  it.each([
    ["'x'", 'x', TypeError, /options/],
    ['42', 42, TypeError, /options/],
    ['{ signal: {} }', { signal: {} }, TypeError, /options\.signal/],
    ["{ signal: 'x' }", { signal: 'x' }, TypeError, /options\.signal/],
    ['{ signal: null }', { signal: null }, TypeError, /options\.signal/],
  ] as [
    string,
    unknown,
    ErrorClass,
    RegExp,
  ][])('read/write/fsync with options %s reject', async (_l, options, cls, re) => {
    const { fd, path } = tempFile(INITIAL);
    const buf = Buffer.alloc(4, 0x2e);
    const cb = AioCb.fromMutSlice(fd, 0, buf);
    expectError(await rejection(cb.read(options as never)), cls, re);
    expectError(await rejection(cb.write(options as never)), cls, re);
    expectError(await rejection(AioCb.fromFd(fd).fsync(AioFsyncMode.O_SYNC, options as never)), cls, re);
    expect(cb.inProgress).toBe(false);
    expect(buf.toString()).toBe('....');
    expect(fs.readFileSync(path, 'utf8')).toBe(INITIAL);
  });

  it.each([
    ['99', 99, RangeError],
    ['-1', -1, RangeError],
    ["'O_SYNC'", 'O_SYNC', TypeError],
    ['undefined', undefined, TypeError],
    ['null', null, TypeError],
  ] as Case[])('fsync mode %s: %O naming mode', async (_l, mode, cls) => {
    const { fd } = tempFile(INITIAL);
    const cb = AioCb.fromFd(fd);
    expectError(await rejection(cb.fsync(mode as never)), cls, /\bmode\b/);
    expect(cb.inProgress).toBe(false);
  });

  it.each(badSigev)('setSigevNotify %s: %O naming sigevNotify', (_l, value, cls) => {
    const { fd } = tempFile(INITIAL);
    const cb = AioCb.fromMutSlice(fd, 0, Buffer.alloc(1), 0, SigevNone);
    expectError(
      thrown(() => cb.setSigevNotify(value as never)),
      cls,
      /sigevNotify/,
    );
    expect(cb.sigevent).toEqual({ kind: 'none' });
  });

  it('read and write on a fromFd block (no buffer) reject with a TypeError', async () => {
    const { fd } = tempFile(INITIAL);
    const cb = AioCb.fromFd(fd);
    expectError(await rejection(cb.read()), TypeError, /fromFd/);
    expectError(await rejection(cb.write()), TypeError, /fromFd/);
    expect(cb.inProgress).toBe(false);
  });

  it('a buffer detached after construction: read, write and lioListio throw a TypeError and submit nothing', async () => {
    const { fd, path } = tempFile(INITIAL);
    const ab = new ArrayBuffer(4);
    const view = new Uint8Array(ab);
    view.set(Buffer.from('WXYZ'));
    const cb = AioCb.fromMutSlice(fd, 0, view, 0, SigevThread, LioOpcode.LIO_WRITE);
    structuredClone(ab, { transfer: [ab] });
    expectError(await rejection(cb.read()), TypeError, /detached/);
    expectError(await rejection(cb.write()), TypeError, /detached/);
    expectError(
      thrown(() => lioListio(LioMode.LIO_WAIT, [cb])),
      TypeError,
      /detached/,
    );
    expect(cb.inProgress).toBe(false);
    expect(fs.readFileSync(path, 'utf8')).toBe(INITIAL);
  });
});

describe('foreign this', () => {
  const proto = AioCb.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const foreign: [string, unknown][] = [
    ['{}', {}],
    ['null', null],
    ['undefined', undefined],
    ['Object.create(AioCb.prototype)', Object.create(AioCb.prototype)],
    ['a Buffer', Buffer.alloc(4)],
  ];

  describe.each(foreign)('on %s', (_l, self) => {
    it.each(['read', 'write', 'fsync'])('AioCb.prototype.%s rejects with a TypeError', async (m) => {
      const args = m === 'fsync' ? [AioFsyncMode.O_SYNC] : [];
      const p = (proto[m] as (...a: unknown[]) => Promise<unknown>).call(self, ...args);
      expect(p).toBeInstanceOf(Promise);
      expectError(await rejection(p), TypeError, new RegExp(`AioCb\\.prototype\\.${m}\\b.*not an AioCb`));
    });

    it.each([
      'error',
      'aioReturn',
      'cancel',
      'setSigevNotify',
      'buffer',
      'boxedSlice',
      'boxedMutSlice',
    ])('AioCb.prototype.%s throws a TypeError', (m) => {
      const args = m === 'setSigevNotify' ? [SigevNone] : [];
      expectError(
        thrown(() => proto[m]?.call(self, ...args)),
        TypeError,
        new RegExp(`AioCb\\.prototype\\.${m}\\b.*not an AioCb`),
      );
    });

    it.each([
      'fd',
      'offset',
      'nbytes',
      'priority',
      'lioOpcode',
      'sigevent',
      'inProgress',
    ])('the %s getter throws a TypeError', (g) => {
      const get = Object.getOwnPropertyDescriptor(AioCb.prototype, g)?.get as () => unknown;
      expect(typeof get).toBe('function');
      expect(thrown(() => get.call(self))).toBeInstanceOf(TypeError);
    });

    it('[Symbol.dispose] throws a TypeError', () => {
      const dispose = AioCb.prototype[Symbol.dispose] as (this: unknown) => void;
      expect(thrown(() => dispose.call(self))).toBeInstanceOf(TypeError);
    });
  });
});

describe('free functions', () => {
  it.each([
    ["'x'", 'x', TypeError, /mode/],
    ['null', null, TypeError, /mode/],
  ] as [string, unknown, ErrorClass, RegExp][])('lioListio mode %s: %O', (_l, mode, cls, re) => {
    expectError(
      thrown(() => lioListio(mode as never, [])),
      cls,
      re,
    );
  });

  it.each([
    ["'x'", 'x', /list/],
    ['null', null, /list/],
    ['undefined', undefined, /list/],
    ['an AioCb', 'cb', /list/],
    ['[{}]', [{}], /list entries/],
    ['[1]', [1], /list entries/],
    ['[undefined]', [undefined], /list entries/],
    ['[a Buffer]', [Buffer.alloc(1)], /list entries/],
  ])('lioListio list %s: TypeError naming the list', (_l, list, re) => {
    const { fd, path } = tempFile(INITIAL);
    const good = AioCb.fromSlice(fd, 0, Buffer.from('ZZ'), 0, SigevNone, LioOpcode.LIO_WRITE);
    const arg = list === 'cb' ? good : Array.isArray(list) ? [good, ...list] : list;
    expectError(
      thrown(() => lioListio(LioMode.LIO_WAIT, arg as never)),
      TypeError,
      re,
    );
    expect(good.inProgress).toBe(false);
    expect(fs.readFileSync(path, 'utf8')).toBe(INITIAL);
  });

  it.each(
    badSigev.filter(([, v]) => v !== undefined),
  )('lioListio sigevNotify %s: %O naming sigevNotify', (_l, value, cls) => {
    const { fd, path } = tempFile(INITIAL);
    const good = AioCb.fromSlice(fd, 0, Buffer.from('ZZ'), 0, SigevNone, LioOpcode.LIO_WRITE);
    expectError(
      thrown(() => lioListio(LioMode.LIO_WAIT, [good], value as never)),
      cls,
      /sigevNotify/,
    );
    expect(fs.readFileSync(path, 'utf8')).toBe(INITIAL);
  });

  it.each(badFd.filter(([, v]) => v !== undefined))('aioCancelAll fd %s: %O naming fd', (_l, value, cls) => {
    expectError(
      thrown(() => aioCancelAll(value as never)),
      cls,
      /\bfd\b/,
    );
  });

  it.each([
    ['list', ['x', 1], TypeError, /list/],
    ['timeoutMs', [[], -1], RangeError, /timeoutMs/],
    ['timeoutMs', [[], '5'], TypeError, /timeoutMs/],
  ] as [string, unknown[], ErrorClass, RegExp][])('aioSuspend %s: rejects with %O', async (_l, args, cls, re) => {
    expectError(await rejection((aioSuspend as (...a: unknown[]) => Promise<void>)(...args)), cls, re);
  });

  // Only invalid options: a valid call would set glibc's tunables for the
  // whole test process.
  it.each([
    ['null', null, TypeError, /options/],
    ["'x'", 'x', TypeError, /options/],
    ['{ threads: 0 }', { threads: 0 }, RangeError, /threads/],
    ['{ threads: 1.5 }', { threads: 1.5 }, RangeError, /threads/],
    ["{ threads: '4' }", { threads: '4' }, TypeError, /threads/],
    ['{ num: -1 }', { num: -1 }, RangeError, /\bnum\b/],
    ['{ num: 2 ** 31 }', { num: 2 ** 31 }, RangeError, /\bnum\b/],
    ['{ idleTime: -1 }', { idleTime: -1 }, RangeError, /idleTime/],
    ['{ idleTime: NaN }', { idleTime: Number.NaN }, RangeError, /idleTime/],
  ] as [string, unknown, ErrorClass, RegExp][])('aioInit %s: %O', (_l, options, cls, re) => {
    expectError(
      thrown(() => aioInit(options as never)),
      cls,
      re,
    );
  });
});

describe('no input crashes the process', () => {
  it('a hostile mix of arguments only ever throws TypeError or RangeError', async () => {
    const { fd } = tempFile(INITIAL);
    const values: unknown[] = [
      undefined,
      null,
      -1,
      0,
      1.5,
      Number.NaN,
      2 ** 53,
      -1n,
      2n ** 70n,
      '',
      'x',
      {},
      [],
      () => {},
      Symbol('s'),
      new ArrayBuffer(2),
      detachedView(),
      new Proxy(
        {},
        {
          get() {
            throw new Error('trap');
          },
        },
      ),
    ];
    let calls = 0;
    for (const v of values) {
      for (const c of ctors(fd)) {
        for (const key of Object.keys(c.pos) as (keyof Ctor['pos'])[]) {
          calls++;
          try {
            c.make(withArg(c, key, v));
          } catch (e) {
            // The proxy's own trap may surface as itself; anything else must be a TypeError or RangeError.
            if ((e as Error).message === 'trap') continue;
            expect([TypeError, RangeError]).toContain((e as Error).constructor);
          }
        }
      }
    }
    expect(calls).toBeGreaterThan(500);
  });
});
