// The failures reported against 622cc53 (the AioFile layer before it took
// FileHandle's shapes), one test each: silent data loss, listener growth,
// leaked descriptors, porting traps and types.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { getEventListeners } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it, vi } from 'vitest';
import { AioFile, open } from '../src/index.js';
import { distEntryUrl, tempDir, tempFile } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A FIFO whose writer sends 'hello', waits 300 ms, sends 'world' and closes. */
function slowPipe(): string {
  const p = path.join(tempDir(), 'pipe');
  execFileSync('mkfifo', [p]);
  const writer = spawn(
    'sh',
    ['-c', `printf hello > '${p}.tmp'; exec 3>'${p}'; cat '${p}.tmp' >&3; sleep 0.3; printf world >&3`],
    {
      stdio: 'ignore',
    },
  );
  writer.unref();
  return p;
}

function runNode(script: string, args: string[] = [], shellPrefix?: string) {
  const argv = [...args, '--input-type=module', '-e', script];
  if (shellPrefix === undefined) return spawnSync(process.execPath, argv, { encoding: 'utf8', timeout: 60_000 });
  const quoted = argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  return spawnSync('sh', ['-c', `${shellPrefix}; exec '${process.execPath}' ${quoted}`], {
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('no silent data loss', () => {
  it('readChunks on a pipe yields what arrives after a pause (was: only "hello")', async () => {
    const file = await open(slowPipe(), 'r');
    const chunks: string[] = [];
    for await (const c of file.readChunks({ chunkSize: 64 })) chunks.push(c.toString());
    await file.close();
    expect(chunks.join('')).toBe('helloworld');
  });

  it('createReadStream on a pipe yields what arrives after a pause', async () => {
    const file = await open(slowPipe(), 'r');
    const chunks: string[] = [];
    for await (const c of file.createReadStream({ encoding: 'utf8' })) chunks.push(c as string);
    expect(chunks.join('')).toBe('helloworld');
    expect(file.fd).toBe(-1);
  });

  it('under ulimit -f 1: write() returns the short count and writeFile/writeChunks reject EFBIG, as FileHandle', () => {
    const url = distEntryUrl();
    const script = `
      import * as fsp from 'node:fs/promises';
      import fs from 'node:fs';
      import * as aio from ${JSON.stringify(url)};
      const dir = ${JSON.stringify(tempDir())};
      const out = {};
      for (const [name, mod] of [['node', fsp], ['aio', aio]]) {
        const p = dir + '/' + name;
        let h = await mod.open(p, 'w');
        const one = await h.write(Buffer.alloc(4096, 0x61), 0, 4096, 0);
        await h.close();
        h = await mod.open(p + '.wf', 'w');
        const wf = await h.writeFile(Buffer.alloc(4096, 0x62)).then(() => 'resolved', (e) => e.code);
        await h.close();
        out[name] = { one: one.bytesWritten, size: fs.statSync(p).size, wf, wfSize: fs.statSync(p + '.wf').size };
      }
      const h = await aio.open(dir + '/chunks', 'w');
      out.chunks = await h.writeChunks([Buffer.alloc(3000, 0x63)]).then(() => 'resolved', (e) => e.code);
      await h.close();
      console.log(JSON.stringify(out));
    `;
    // 1 block of 1024 bytes; SIGXFSZ is ignored so the write fails with EFBIG.
    const r = runNode(script, [], "ulimit -f 1; trap '' XFSZ");
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    // One transfer stops at the limit (sh counts ulimit -f in 512- or
    // 1024-byte blocks); the loops reject with EFBIG there.
    expect(out.node.one).toBeLessThan(4096);
    expect(out.node).toEqual({ one: out.node.one, size: out.node.one, wf: 'EFBIG', wfSize: out.node.one });
    expect(out.aio).toEqual(out.node);
    expect(out.chunks).toBe('EFBIG');
  });
});

describe('one abort listener per file and signal', () => {
  it('16 reads in flight and writeChunks({ depth: 16 }) on one signal: one listener, no warning', async () => {
    const data = Buffer.alloc(64 * 1024, 0x5a);
    const { path: p } = tempFile(data);
    // nowait: false: the listener of reads in flight is what is checked, and
    // cached reads would otherwise complete inline without one.
    const file = await open(p, 'r+', undefined, { concurrency: 4, nowait: false });
    const ac = new AbortController();
    const reads = Array.from({ length: 16 }, (_, i) =>
      file.read(Buffer.alloc(512), { position: i * 512, signal: ac.signal }),
    );
    expect(getEventListeners(ac.signal, 'abort').length).toBe(1);
    const results = await Promise.all(reads);
    expect(results.map((r) => r.bytesRead)).toEqual(Array(16).fill(512));
    const chunks = Array.from({ length: 64 }, (_, i) => Buffer.alloc(1024, i));
    await expect(file.writeChunks(chunks, { depth: 16, signal: ac.signal })).resolves.toBe(64 * 1024);
    expect(fs.readFileSync(p).equals(Buffer.concat(chunks))).toBe(true);
    expect(getEventListeners(ac.signal, 'abort').length).toBe(0);
    await file.close();
    // The setup file fails this test on a MaxListenersExceededWarning.
  });

  it('queued operations do not build AbortSignal.any', async () => {
    const { path: p } = tempFile(Buffer.alloc(4096));
    const file = await open(p, 'r', undefined, { concurrency: 1 });
    const any = vi.spyOn(AbortSignal, 'any');
    try {
      const ac = new AbortController();
      const reads = Array.from({ length: 1000 }, () => file.read(Buffer.alloc(16), { position: 0, signal: ac.signal }));
      await Promise.all(reads);
      expect(any).not.toHaveBeenCalled();
      expect(getEventListeners(ac.signal, 'abort').length).toBe(0);
    } finally {
      any.mockRestore();
      await file.close();
    }
  });

  it('aborting 1,000 queued reads dispatches one abort event per file and signal, not one per read', async () => {
    const { path: p } = tempFile(Buffer.alloc(4096));
    // nowait: false: the reads queue for admission instead of completing inline.
    const file = await open(p, 'r', undefined, { concurrency: 2, nowait: false });
    const dispatch = vi.spyOn(EventTarget.prototype, 'dispatchEvent');
    try {
      const ac = new AbortController();
      const reads = Array.from({ length: 1000 }, () =>
        file.read(Buffer.alloc(16), { position: 0, signal: ac.signal }).then(
          () => 'done',
          (e: Error) => e.name,
        ),
      );
      ac.abort();
      const names = await Promise.all(reads);
      expect(names.filter((n) => n === 'AbortError').length).toBeGreaterThanOrEqual(998);
      // The user's signal, and the file's internal one for the reads in
      // flight. Node keeps every trusted Event in a WeakSet whose table grows
      // with the Events made between two collections and never shrinks: one
      // per queued read made aborting 100,000 of them cost 1 to 4 MiB for
      // good (test below).
      const aborts = dispatch.mock.calls.filter(([e]) => e.type === 'abort').length;
      expect(aborts).toBe(2);
    } finally {
      dispatch.mockRestore();
      await file.close();
    }
  });

  // Runs on every Node version. The aborts used to leave 1 to 4 MiB (more on
  // Node 24 and 26) in Node's trusted-Event WeakSet, one Event per queued
  // operation (test above, src/api/admission.ts). heapUsed is read on
  // the same turn as the counting, so the counting runs in a function of its
  // own: its temporaries (the 100,000-element arrays from flat() and
  // filter()) would otherwise still be held by the module's frame and
  // counted as growth, up to 2.6 MB per 100,000 aborted without posix-aio.
  it('heap stays flat over 100,000 completed and 100,000 aborted operations on one signal each', () => {
    const url = distEntryUrl();
    const { path: p } = tempFile(Buffer.alloc(4096, 1));
    const script = `
      import { getEventListeners } from 'node:events';
      import { open } from ${JSON.stringify(url)};
      // nowait: false: queued AIO reads are what the abort must reach.
      const file = await open(${JSON.stringify(p)}, 'r', undefined, { concurrency: 8, nowait: false });
      const buf = Buffer.alloc(64);
      const heap = () => { gc(); gc(); return process.memoryUsage().heapUsed; };
      const done = new AbortController();
      const wave = async (signal, n) => {
        const ops = [];
        for (let i = 0; i < n; i++) ops.push(file.read(buf, { position: 0, signal }).then(() => 1, (e) => e.name));
        return Promise.all(ops);
      };
      for (let i = 0; i < 5; i++) await wave(done.signal, 1000);
      const before = heap();
      for (let i = 0; i < 100; i++) await wave(done.signal, 1000);
      const abortWaves = async () => {
        const aborting = new AbortController();
        const pending = [];
        for (let i = 0; i < 100; i++) pending.push(wave(aborting.signal, 1000));
        aborting.abort(new Error('stop'));
        const aborted = (await Promise.all(pending)).flat().filter((x) => x === 'AbortError').length;
        return { aborted, listeners: getEventListeners(aborting.signal, 'abort').length };
      };
      const { aborted, listeners } = await abortWaves();
      const after = heap();
      console.log(JSON.stringify({ growth: after - before, aborted,
        listeners: getEventListeners(done.signal, 'abort').length + listeners }));
      await file.close();
    `;
    const r = runNode(script, ['--expose-gc']);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out.listeners).toBe(0);
    // Queued ones are aborted; those already in flight may complete.
    expect(out.aborted).toBeGreaterThan(99_900);
    expect(out.growth).toBeLessThan(4 * 1024 * 1024);
  }, 60_000);
});

describe('descriptors', () => {
  it('fd is -1 after close()', async () => {
    const { path: p } = tempFile('abc');
    const file = await open(p);
    expect(file.fd).toBeGreaterThanOrEqual(0);
    await file.close();
    expect(file.fd).toBe(-1);
  });

  it('a file dropped without close() is closed on garbage collection, with a warning', () => {
    const url = distEntryUrl();
    const { path: p } = tempFile('abc');
    const script = `
      import fs from 'node:fs';
      import { open } from ${JSON.stringify(url)};
      let fd;
      await (async () => { const f = await open(${JSON.stringify(p)}); fd = f.fd; await f.read(Buffer.alloc(1), 0, 1, 0); })();
      for (let i = 0; i < 10; i++) { gc(); await new Promise((r) => setTimeout(r, 20)); }
      // Open still means the number still names this file (it may be reused).
      let open_ = true;
      try { open_ = fs.readlinkSync('/proc/self/fd/' + fd) === ${JSON.stringify(p)}; } catch { open_ = false; }
      console.log(JSON.stringify({ fd, open: open_ }));
    `;
    const r = runNode(script, ['--expose-gc']);
    const out = JSON.parse(r.stdout);
    expect(out.open).toBe(false);
    expect(r.stderr).toContain(`Closing file descriptor ${out.fd} on garbage collection`);
  });
});

describe('porting traps', () => {
  it('write(Buffer.from(s), 0) in a loop appends, as with FileHandle (was: overwrote at position 0)', async () => {
    const p = path.join(tempDir(), 'log');
    const file = await open(p, 'w');
    for (const s of ['one,', 'two,', 'three']) await file.write(Buffer.from(s), 0);
    await file.close();
    expect(fs.readFileSync(p, 'utf8')).toBe('one,two,three');
  });

  it('const { bytesRead } = await file.read(...) is defined', async () => {
    const { path: p } = tempFile('abcdef');
    const file = await open(p);
    const { bytesRead, buffer } = await file.read(Buffer.alloc(4), 0, 4, 1);
    expect(bytesRead).toBe(4);
    expect(buffer.toString()).toBe('bcde');
    await file.close();
  });

  it("open(path, 'r', { concurrency }) and open(path, { flags, concurrency }) are accepted", async () => {
    const { path: p } = tempFile('abc');
    for (const file of [
      await open(p, 'r', { concurrency: 2 }),
      await open(p, { flags: 'r', concurrency: 2 }),
      await open(p, 'r', 0o666, { concurrency: 2 }),
    ]) {
      const { bytesRead, buffer } = await file.read(Buffer.alloc(3), 0, 3, 0);
      expect([bytesRead, buffer.toString()]).toEqual([3, 'abc']);
      await file.close();
    }
  });

  it('read(buffer) reads at the file position (was: "got undefined undefined")', async () => {
    const { path: p } = tempFile('abcdef');
    const file = await open(p);
    const a = await file.read(Buffer.alloc(4));
    const b = await file.read(Buffer.alloc(4));
    expect([a.bytesRead, a.buffer.toString(), b.bytesRead, b.buffer.subarray(0, b.bytesRead).toString()]).toEqual([
      4,
      'abcd',
      2,
      'ef',
    ]);
    await file.close();
  });

  it('fromFd starts at file position 0 and reads at it', async () => {
    const { fd } = tempFile('xyz');
    const file = AioFile.fromFd(fd);
    const { bytesRead, buffer } = await file.read(Buffer.alloc(2));
    expect([bytesRead, buffer.toString()]).toEqual([2, 'xy']);
    await file.close();
  });

  it('truncate waits for the writes submitted before it', async () => {
    const { path: p } = tempFile('');
    const file = await open(p, 'r+');
    const writes = Array.from({ length: 32 }, (_, i) => file.write(Buffer.alloc(4096, i), 0, 4096, i * 4096));
    expect(file.pendingMutations).toBe(32);
    const t = file.truncate(100);
    await Promise.all([...writes, t]);
    expect(file.pendingMutations).toBe(0);
    expect(fs.readFileSync(p).equals(Buffer.alloc(100, 0))).toBe(true);
    await file.close();
  });
});

describe('types', () => {
  it('the emitted declarations compile for consumers without esModuleInterop, with exactOptionalPropertyTypes', () => {
    distEntryUrl();
    const dts = fs.readdirSync(path.join(root, 'dist', 'api')).filter((f) => f.endsWith('.d.ts'));
    for (const f of dts) {
      expect(fs.readFileSync(path.join(root, 'dist', 'api', f), 'utf8')).not.toMatch(/^import \w+ from 'node:/m);
    }
    const dir = tempDir();
    const consumer = path.join(dir, 'consumer.ts');
    fs.writeFileSync(
      consumer,
      `import { open, type OperationOptions, type SyncOptions, type BatchOptions, type ReadOptions } from ${JSON.stringify(
        path.join(root, 'dist', 'index.js'),
      )};
      export async function f(signal: AbortSignal | undefined) {
        const file = await open('x', 'r');
        const o: OperationOptions = { signal };
        const s: SyncOptions = { signal };
        const b: BatchOptions = { signal, reqprio: 1 };
        const r: ReadOptions = { signal, position: null };
        await file.sync(s);
        await file.read(Buffer.alloc(1), r);
        file.batch([], b);
        return o;
      }
      `,
    );
    for (const esModuleInterop of [false, true]) {
      const program = ts.createProgram([consumer], {
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        target: ts.ScriptTarget.ES2022,
        lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'],
        types: ['node'],
        typeRoots: [path.join(root, 'node_modules', '@types')],
        strict: true,
        exactOptionalPropertyTypes: true,
        skipLibCheck: false,
        esModuleInterop,
        noEmit: true,
      });
      const diags = ts
        .getPreEmitDiagnostics(program)
        .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
        .filter((m) => !m.includes('node_modules/@types') && !m.includes('node_modules/vite'));
      expect(diags).toEqual([]);
    }
  }, 60_000);
});
