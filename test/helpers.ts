// Shared fixtures: temporary files and descriptors, closed after each test.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';

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
