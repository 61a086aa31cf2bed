// Buffers the library allocates (alignedBuffer) outlive what JavaScript does
// to them while an operation uses them.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AioCb, alignedBuffer } from '../src/index.js';
import { blockingFifo, distEntryUrl, tempDir, waitUntilReading } from './helpers.js';

describe('alignedBuffer memory', () => {
  it('a transfer attempt never detaches it, and an in-flight read still lands in it', async () => {
    const fifo = blockingFifo();
    const buf = alignedBuffer(4096);
    const read = AioCb.fromMutSlice(fifo.fd, 0, buf).read();
    await waitUntilReading(fifo.fd);
    // External (native) memory cannot be detached. Node 20 gives the clone a
    // copy; Node 22 and later refuse the transfer with a DataCloneError. Either
    // way the buffer the read writes into must stay attached.
    const ab = buf.buffer as ArrayBuffer;
    let copy: ArrayBuffer | undefined;
    try {
      copy = structuredClone(ab, { transfer: [ab] });
    } catch (e) {
      expect((e as Error).name).toBe('DataCloneError');
    }
    if (copy !== undefined) {
      expect(copy).not.toBe(ab);
      expect(copy.byteLength).toBe(4096);
    }
    expect(ab.byteLength).toBe(4096);
    expect(buf.byteLength).toBe(4096);
    fs.writeSync(fifo.fd, Buffer.alloc(4096, 0x5a));
    await expect(read).resolves.toBe(4096);
    expect(buf.equals(Buffer.alloc(4096, 0x5a))).toBe(true);
    // A copy, when made, was taken before the read landed and is not shared.
    if (copy !== undefined) expect(Buffer.from(copy).equals(Buffer.alloc(4096))).toBe(true);
  });

  it('dropped and garbage-collected while a read is in flight: the read completes into live memory', () => {
    // In a child with --expose-gc: nothing but the promise is kept while the
    // read blocks on a FIFO; forced collections run; then the FIFO is fed.
    const dir = tempDir();
    const fifoPath = path.join(dir, 'fifo');
    spawnSync('mkfifo', [fifoPath]);
    const script = `
      import fs from 'node:fs';
      const { AioCb, alignedBuffer } = await import(${JSON.stringify(distEntryUrl())});
      const fd = fs.openSync(${JSON.stringify(fifoPath)}, 'r+');
      let done = 0;
      const reads = [];
      for (let i = 0; i < 64; i++) {
        reads.push(AioCb.fromMutSlice(fd, 0, alignedBuffer(4096)).read().then((n) => { done += n; }));
      }
      for (let i = 0; i < 10; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 5)); }
      // Churn the allocator so freed memory would be reused.
      const junk = [];
      for (let i = 0; i < 256; i++) junk.push(alignedBuffer(4096).fill(1));
      fs.writeSync(fd, Buffer.alloc(64 * 4096, 7));
      await Promise.all(reads);
      globalThis.gc();
      console.log(JSON.stringify({ done, junk: junk.every((b) => b[0] === 1 && b[4095] === 1) }));
      fs.closeSync(fd);
    `;
    const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.stderr).not.toMatch(/Segmentation|Aborted|AddressSanitizer|double free/);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual({ done: 64 * 4096, junk: true });
  });
});
