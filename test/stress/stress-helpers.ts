// Helpers shared by the stress tests: bounded waits, settlement counting,
// FIFOs that block glibc's workers, and saturation of glibc's AIO thread pool.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AioCb } from '../../src/index.js';
import { onCleanup, tempDir } from '../helpers.js';

export { rejection } from '../helpers.js';

/** Rejects if `p` has not settled within `ms` (a hang becomes a failure). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
    }),
  ]);
}

/** Counts how often each outcome handler of `p` runs. */
export function settlements<T>(p: Promise<T>): { count: number; value?: T; error?: unknown } {
  const s: { count: number; value?: T; error?: unknown } = { count: 0 };
  p.then(
    (v) => {
      s.count++;
      s.value = v;
    },
    (e: unknown) => {
      s.count++;
      s.error = e;
    },
  );
  return s;
}

/**
 * `n` FIFOs opened read-write; reads on them block until written. Cleanup
 * writes to each and closes it, unless `keepOpen`: a request stranded in
 * glibc's queue keeps its descriptor number, and a later test opening the
 * same number would queue behind it.
 */
export function fifos(n: number, name: string, keepOpen = false): number[] {
  const dir = tempDir();
  const paths = Array.from({ length: n }, (_, i) => path.join(dir, `${name}-${i}`));
  execFileSync('mkfifo', paths);
  const fds = paths.map((p) => fs.openSync(p, 'r+'));
  onCleanup(() => {
    for (const fd of fds) {
      fs.writeSync(fd, Buffer.alloc(4096, 0x7a));
      if (!keepOpen) fs.closeSync(fd);
    }
  });
  return fds;
}

/** How many threads of this process are blocked in read(2) on one of `fds`. */
export function threadsReading(fds: number[]): number {
  const readNr = ({ x64: 0, arm64: 63, ia32: 3, arm: 3 } as Record<string, number>)[process.arch];
  const wanted = new Set(fds.map((fd) => `${readNr} 0x${fd.toString(16)}`));
  let n = 0;
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const words = fs.readFileSync(`/proc/self/task/${tid}/syscall`, 'utf8').split(' ');
      if (wanted.has(`${words[0]} ${words[1]}`)) n++;
    } catch {
      // the thread exited
    }
  }
  return n;
}

export async function untilReading(fds: number[], atLeast: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (threadsReading(fds) < atLeast) {
    if (Date.now() > deadline) throw new Error(`only ${threadsReading(fds)} of ${atLeast} threads reading`);
    await sleep(2);
  }
}

/**
 * Occupies glibc's AIO worker threads (20 by default; the reaper's sentinel
 * read may hold one) with reads on FIFOs nobody writes, so that the next
 * request on a new descriptor waits in glibc's run list instead of starting.
 * `release()` lets the reads finish.
 */
export async function saturateWorkers(count = 20): Promise<{ release: () => Promise<void> }> {
  const fds = fifos(count, 'busy');
  const reads = fds.map((fd) => AioCb.fromMutSlice(fd, 0, Buffer.alloc(1)).read());
  await untilReading(fds, count - 1);
  await sleep(20);
  let released: Promise<void> | undefined;
  const release = () => {
    released ??= (async () => {
      for (const fd of fds) fs.writeSync(fd, 'x');
      await Promise.all(reads);
    })();
    return released;
  };
  onCleanup(() => void release());
  return { release };
}

/** Resolves once `s` has settled (polling), or fails after `ms`. */
export function settledWithin(s: { count: number }, ms: number, what: string): Promise<void> {
  return within(
    new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (s.count > 0) {
          clearInterval(poll);
          resolve();
        }
      }, 1);
      onCleanup(() => clearInterval(poll));
    }),
    ms,
    what,
  );
}
