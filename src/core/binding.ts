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
  readonly SIGRTMAX: number;
  readonly AIO_PRIO_DELTA_MAX: number;
  readonly AIO_LISTIO_MAX: number;
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
  setDispatcher(fn: (count: number, records?: Float64Array) => void): void;
  flush(): void;
  dup(fd: number): number;
  lioListio(
    mode: number,
    entries: (NativeAioCb | null)[],
    slots: number[],
    notify: number,
    signo: number,
    sigval: number,
  ): 0 | number[];
  aioSuspend(entries: NativeAioCb[], timeoutMs: number, slot: number): void;
  aioCancelAll(fd: number): number;
  aioInit(threads: number, num: number, idleTime: number): boolean;
  alignedBuffer(size: number, alignment: number): ArrayBuffer;
  constants: NativeConstants;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);

function load(): NativeBinding {
  try {
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
    return nodeGypBuild(root) as NativeBinding;
  } catch (cause) {
    const hint =
      process.platform === 'win32'
        ? 'POSIX AIO does not exist on Windows.'
        : 'No prebuild matched and no local build was found. Build from source with ' +
          '`npm rebuild posix-aio` (needs python3, make and a C++17 compiler), ' +
          'or run `npm run build:native` in a clone.';
    throw new Error(
      `posix-aio: could not load the native addon for ${process.platform}-${process.arch} ` +
        `(Node ${process.version}, N-API ${process.versions.napi}) from ${root}. ${hint}`,
      { cause },
    );
  }
}

export const native: NativeBinding = load();
export const constants: NativeConstants = native.constants;
