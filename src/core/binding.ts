// Loads the native addon (a prebuild when present, else the local build) and
// describes its surface. Nothing outside src/core imports this file.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The native control block; see native/aiocb.h. */
export interface NativeAioCb {
  /** 0, an errno, -1 when still in progress, -2 when deferred to a flush not yet scheduled. */
  submit(op: number, fsyncMode: number, slot: number): number;
  poll(): number;
  lastReturn(): number;
  error(): number;
  take(): number;
  cancel(): number;
  state(): number;
  opcode(): number;
  setSigev(kind: number, signo: number, value: number): void;
  releaseBuffer(): void;
  /** Re-targets an idle block; false while in progress. */
  retarget(fd: number, offset: number | bigint, view: ArrayBufferView, prio: number): boolean;
  /** This block's id in its environment's engine (never 0), for lioListio. */
  id(): number;
  /** Settles the promise lioListio made natively (rejects when error is given); false if none. */
  settle(result: number, error?: unknown): boolean;
}

export interface NativeConstants {
  readonly LIO_NOP: number;
  readonly LIO_READ: number;
  readonly LIO_WRITE: number;
  readonly LIO_WAIT: number;
  readonly LIO_NOWAIT: number;
  readonly AIO_CANCELED: number;
  readonly AIO_NOTCANCELED: number;
  readonly AIO_ALLDONE: number;
  readonly O_SYNC: number;
  readonly O_DSYNC: number;
  readonly O_DIRECT?: number;
  readonly EINPROGRESS: number;
  readonly ECANCELED: number;
  readonly SIGRTMIN: number;
  readonly SIGRTMAX: number;
  readonly AIO_PRIO_DELTA_MAX: number;
  readonly AIO_LISTIO_MAX: number;
  readonly POSIX_FADV_NORMAL: number;
  readonly POSIX_FADV_SEQUENTIAL: number;
  readonly POSIX_FADV_RANDOM: number;
  readonly POSIX_FADV_WILLNEED: number;
  readonly POSIX_FADV_DONTNEED: number;
  readonly POSIX_FADV_NOREUSE: number;
  /** Whether `preadNowait` was compiled over `preadv2(RWF_NOWAIT)` (else it reports ENOSYS). */
  readonly HAVE_RWF_NOWAIT: boolean;
}

export interface NativeBinding {
  NativeAioCb: new (
    fd: number,
    offset: number | bigint,
    view: ArrayBufferView | null,
    prio: number,
    notify: number,
    signo: number,
    sigval: number,
    opcode: number,
    writeOnly: boolean,
  ) => NativeAioCb;
  setDispatcher(fn: (count: number, records?: Float64Array) => void, never: Promise<never>): void;
  flush(): void;
  /** Waits, blocking and bounded, for this environment's writes and fsyncs in flight; how many remain. */
  drainWrites(timeoutMs: number): number;
  dup(fd: number): number;
  /** ids[i]: the entry's id (NativeAioCb.id), 0 for none; slots[i]: its registry slot. */
  lioListio(
    mode: number,
    ids: Uint32Array,
    slots: Uint32Array,
    notify: number,
    signo: number,
    sigval: number,
    /** Filled with the promise of each entry that is not null or LIO_NOP, once the call succeeded. */
    promises: Promise<number>[],
  ): 0 | number | number[];
  aioSuspend(entries: NativeAioCb[], timeoutMs: number, slot: number): void;
  aioCancelAll(fd: number): number;
  aioInit(threads: number, num: number, idleTime: number): boolean;
  alignedBuffer(size: number, alignment: number): ArrayBuffer;
  /** `preadv2(fd, [view[offset..offset+length)], 1, position, RWF_NOWAIT)`: bytes or -errno; see native/nowait.h. */
  preadNowait(fd: number, view: ArrayBufferView, position: number | bigint, offset: number, length: number): number;
  /** `posix_fadvise`: 0 or -errno. */
  fadvise(fd: number, offset: number | bigint, length: number | bigint, advice: number): number;
  /** `fcntl(fd, F_GETFL)`, or -errno. */
  fdFlags(fd: number): number;
  constants: NativeConstants;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);

function load(): NativeBinding {
  try {
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
    return nodeGypBuild(root) as NativeBinding;
  } catch (cause) {
    const target = `${process.platform}-${process.arch}`;
    const tried = [
      `a prebuild in ${join(root, 'prebuilds', target)} (N-API ${process.versions.napi})`,
      `a local build in ${join(root, 'build', 'Release')} and ${join(root, 'build', 'Debug')}`,
    ];
    const fixes =
      process.platform === 'win32' || process.platform === 'darwin'
        ? [
            `${process.platform} is not supported: posix-aio needs POSIX AIO with SIGEV_NONE/SIGEV_SIGNAL (Linux, FreeBSD).`,
          ]
        : [
            'Build from source: `npm rebuild posix-aio` (needs python3, make and a C++17 compiler:',
            '  Debian/Ubuntu `apt-get install python3 make g++`, Alpine `apk add python3 make g++`),',
            'or, in a clone, `npm run build:native`.',
          ];
    throw new Error(
      `posix-aio: could not load the native addon for ${target} (Node ${process.version}).\n` +
        `Tried:\n${tried.map((t) => `  - ${t}`).join('\n')}\n` +
        `Cause: ${(cause as Error)?.message ?? String(cause)}\n${fixes.join('\n')}`,
      { cause },
    );
  }
}

export const native: NativeBinding = load();
export const constants: NativeConstants = native.constants;
