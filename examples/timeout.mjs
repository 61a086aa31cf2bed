#!/usr/bin/env node
// Cancellation with AbortSignal.timeout(). A read on an empty FIFO blocks
// inside libc; glibc runs one request per descriptor at a time, so a second
// read on the same file waits in glibc's queue behind it, where aio_cancel()
// can still reach it. When its timeout fires it rejects with an AbortError
// whose `cause` is the signal's reason (a TimeoutError DOMException). The
// first read is already running: no signal could cancel it, and it completes
// once bytes arrive. AbortSignal.any() combines a caller's signal with a
// timeout the same way.
//
//   npm run build:ts && node examples/timeout.mjs
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AbortError, open } from '../dist/index.js';

const TIMEOUT_MS = 100;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posix-aio-timeout-'));
try {
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  // Read-write, so that opening does not wait for a writer and reads block
  // instead of returning end of file.
  const file = await open(fifo, 'r+');
  try {
    const first = Buffer.alloc(1);
    const running = file.read(first, { position: 0 });
    console.log('first read: blocked in libc on the empty FIFO');

    const started = performance.now();
    try {
      await file.read(Buffer.alloc(1), { position: 0, signal: AbortSignal.timeout(TIMEOUT_MS) });
      console.log('second read: completed (unexpected)');
      process.exitCode = 1;
    } catch (err) {
      const ms = Math.round(performance.now() - started);
      if (!(err instanceof AbortError)) throw err;
      const cause = err.cause instanceof Error ? `${err.cause.name}: ${err.cause.message}` : String(err.cause);
      console.log(`second read: rejected after ${ms} ms with ${err.name} (code ${err.code}), cause ${cause}`);
    }

    // AbortSignal.any(): whichever fires first, the caller or the timeout.
    const user = new AbortController();
    setTimeout(() => user.abort(new Error('cancelled by the user')), 20);
    try {
      await file.read(Buffer.alloc(1), {
        position: 0,
        signal: AbortSignal.any([user.signal, AbortSignal.timeout(10_000)]),
      });
      console.log('third read: completed (unexpected)');
      process.exitCode = 1;
    } catch (err) {
      if (!(err instanceof AbortError)) throw err;
      console.log(`third read: rejected with ${err.name} (code ${err.code}), cause ${err.cause}`);
    }

    // Bytes written with plain fs end the first read (an AioFile write would
    // queue behind it on the same descriptor).
    fs.writeSync(file.fd, 'A');
    const { bytesRead: n } = await running;
    console.log(`first read: returned ${n} byte(s): ${JSON.stringify(first.toString('latin1', 0, n))}`);
  } finally {
    await file.close();
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
