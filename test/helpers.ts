// Shared fixtures: temporary files and descriptors, closed after each test.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach } from 'vitest';
import type { AioFile, OperationOptions } from '../src/index.js';

const cleanups: (() => void)[] = [];

afterEach(() => {
  while (cleanups.length > 0) {
    try {
      cleanups.pop()?.();
    } catch {
      // already gone
    }
  }
});

/** A fresh temporary directory, removed after the test. */
export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posix-aio-test-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A temporary file holding `contents`, opened with `flags`; returns its fd and path. */
export function tempFile(contents: string | Uint8Array = '', flags = 'r+'): { fd: number; path: string } {
  const p = path.join(tempDir(), 'data');
  fs.writeFileSync(p, contents);
  const fd = fs.openSync(p, flags);
  cleanups.push(() => fs.closeSync(fd));
  return { fd, path: p };
}

/**
 * A FIFO opened read-write: a read on it blocks in libc until something is
 * written, so it holds glibc's one-request-per-descriptor slot and anything
 * queued behind it stays reliably cancellable. `release(n)` writes n bytes;
 * cleanup writes enough to end every read the test left blocked.
 */
export function blockingFifo(): { fd: number; release: (n?: number) => void } {
  const p = path.join(tempDir(), 'fifo');
  execFileSync('mkfifo', [p]);
  const fd = fs.openSync(p, 'r+');
  const release = (n = 1) => {
    fs.writeSync(fd, Buffer.alloc(n, 0x2a));
  };
  cleanups.push(() => {
    release(1 << 16);
    fs.closeSync(fd);
  });
  return { fd, release };
}

export function onCleanup(fn: () => void): void {
  cleanups.push(fn);
}

/**
 * Resolves once some thread of this process is blocked in read(2) on `fd`:
 * for a blockingFifo() read that means glibc's worker has taken the request
 * (it runs, so aio_cancel reports AIO_NOTCANCELED) and anything submitted
 * later on the same descriptor waits in glibc's queue (cancellable). Reads
 * /proc/self/task/<tid>/syscall: the syscall number, then the arguments.
 */
export async function waitUntilReading(fd: number, timeoutMs = 10_000): Promise<void> {
  const readNr = ({ x64: 0, arm64: 63, ia32: 3, arm: 3 } as Record<string, number>)[process.arch];
  if (readNr === undefined) throw new Error(`waitUntilReading: no read(2) number for ${process.arch}`);
  const want = `${readNr} 0x${fd.toString(16)} `;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const tid of fs.readdirSync('/proc/self/task')) {
      try {
        if (fs.readFileSync(`/proc/self/task/${tid}/syscall`, 'utf8').startsWith(want)) return;
      } catch {
        // the thread exited
      }
    }
    if (Date.now() > deadline) throw new Error(`waitUntilReading: no thread is blocked reading fd ${fd}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function newerThan(src: string, out: string): boolean {
  try {
    return fs.statSync(src).mtimeMs > fs.statSync(out).mtimeMs;
  } catch {
    return true;
  }
}

function distIsStale(): boolean {
  const srcRoot = path.join(repoRoot, 'src');
  const stack = [srcRoot];
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        const out = path.join(repoRoot, 'dist', path.relative(srcRoot, p)).replace(/\.ts$/, '.js');
        if (newerThan(p, out)) return true;
      }
    }
  }
  return false;
}

/**
 * The file URL of the built package entry (dist/index.js), for Workers and
 * child processes, which cannot load the TypeScript sources. Rebuilds dist
 * with `tsc -p tsconfig.build.json` when a source is newer than its output;
 * a lock directory keeps test files running in parallel from building (or
 * reading a half-written dist) at the same time.
 */
export function distEntryUrl(): string {
  const entry = path.join(repoRoot, 'dist', 'index.js');
  const lock = path.join(repoRoot, 'node_modules', '.posix-aio-test-dist.lock');
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; ; waited += 50) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // A lock left by a killed run is broken after two minutes.
      if (waited > 120_000) fs.rmSync(lock, { recursive: true, force: true });
      Atomics.wait(sleeper, 0, 0, 50);
    }
  }
  try {
    if (distIsStale()) {
      const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
      try {
        execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: repoRoot, stdio: 'pipe' });
      } catch (e) {
        // tsc still emits on type errors (npm test's typecheck reports them);
        // only a missing output is fatal here.
        if (!fs.existsSync(entry)) throw e;
      }
    }
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
  return pathToFileURL(entry).href;
}

/** Tracks whether a promise has settled yet. */
export function track(p: Promise<unknown>): { settled: boolean } {
  const t = { settled: false };
  p.then(
    () => (t.settled = true),
    () => (t.settled = true),
  );
  return t;
}

/** The error a promise rejects with; fails the test if it resolves. */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  const r = await p.then(
    (v) => ({ ok: true as const, v }),
    (e: unknown) => ({ ok: false as const, e }),
  );
  if (r.ok) throw new Error(`expected a rejection, got ${String(r.v)}`);
  return r.e as Error;
}

/**
 * Returns once glibc has given a worker thread every request submitted
 * before the call: glibc's run list is ordered by priority, then FIFO, so a
 * later read on another descriptor completes only after those ahead of it
 * were taken. A taken request is running and aio_cancel cannot cancel it.
 */
export async function glibcCaughtUp(): Promise<void> {
  const { fd } = tempFile('x');
  const { AioCb } = await import('../src/index.js');
  await AioCb.fromMutSlice(fd, 0, Buffer.alloc(1)).read();
  await new Promise((r) => setTimeout(r, 10));
}

/**
 * One AioFile read into all of `buffer` at `position`, through the
 * FileHandle shape `read(buffer, { position })`: FileHandle's `bytesRead`.
 */
export async function readAt(
  file: AioFile,
  buffer: ArrayBufferView,
  position: number | bigint,
  options?: OperationOptions,
): Promise<number> {
  const { bytesRead } = await file.read(buffer, { ...options, position });
  return bytesRead;
}

/**
 * One AioFile write of all of `buffer` at `position`, through the
 * FileHandle shape `write(buffer, { position })`: FileHandle's `bytesWritten`.
 */
export async function writeAt(
  file: AioFile,
  buffer: ArrayBufferView,
  position: number | bigint,
  options?: OperationOptions,
): Promise<number> {
  const { bytesWritten } = await file.write(buffer, { ...options, position });
  return bytesWritten;
}
