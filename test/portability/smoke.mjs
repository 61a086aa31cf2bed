// Smoke test of an installed posix-aio on a platform the full suite does not
// run on (test/portability/run.sh runs it with an arm64 Node under qemu):
// one AioCb read with its bytes checked, one file.batch, and Workers that load
// the addon and are terminated with reads in flight. Prints one JSON line.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { AioCb, open } from 'posix-aio';

const require = createRequire(import.meta.url);
const pkg = path.dirname(require.resolve('posix-aio/package.json'));
const url = pathToFileURL(require.resolve('posix-aio')).href;
const addon = path.relative(pkg, createRequire(path.join(pkg, 'package.json'))('node-gyp-build').resolve(pkg));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posix-aio-smoke-'));
try {
  const p = path.join(dir, 'data.bin');
  const data = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => (i * 31 + 7) & 0xff));
  fs.writeFileSync(p, data);

  // AioCb: one read, bytes compared.
  const fd = fs.openSync(p, 'r');
  const buf = Buffer.alloc(4096);
  const n = await AioCb.fromMutSlice(fd, 1000, buf).read();
  fs.closeSync(fd);
  if (n !== 4096 || !buf.equals(data.subarray(1000, 5096))) throw new Error(`AioCb read: ${n} bytes, content differs`);

  // AioFile.batch: a write and a read in one lio_listio.
  const file = await open(p, 'r+');
  const back = Buffer.alloc(3);
  const [written, read] = await Promise.all(
    file.batch([
      { op: 'write', buffer: Buffer.from('xyz'), position: 10 },
      { op: 'read', buffer: back, position: 20 },
    ]),
  );
  await file.close();
  if (written !== 3 || read !== 3 || !back.equals(data.subarray(20, 23))) throw new Error('batch results differ');
  if (fs.readFileSync(p).subarray(10, 13).toString() !== 'xyz') throw new Error('batch write did not land');

  // Workers terminated while their reads are in flight.
  const src = `
    const { parentPort, workerData } = require('node:worker_threads');
    const fs = require('node:fs');
    import(workerData.url).then(async ({ AioCb }) => {
      const fd = fs.openSync(workerData.path, 'r');
      for (let i = 0; i < 200; i++) AioCb.fromMutSlice(fd, (i * 64) % 65536, Buffer.alloc(64)).read().catch(() => {});
      parentPort.postMessage('submitted');
      for (;;) await AioCb.fromMutSlice(fd, 0, Buffer.alloc(512)).read();
    }, (e) => parentPort.postMessage(String(e)));
  `;
  const codes = [];
  for (let round = 0; round < 3; round++) {
    const w = new Worker(src, { eval: true, workerData: { path: p, url } });
    const m = await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    if (m !== 'submitted') throw new Error(`worker: ${m}`);
    codes.push(await w.terminate());
  }
  if (codes.some((c) => c !== 1)) throw new Error(`terminate codes ${codes}`);

  // The main thread's instance still works after the Workers are gone.
  const again = Buffer.alloc(16);
  const fd2 = fs.openSync(p, 'r');
  await AioCb.fromMutSlice(fd2, 100, again).read();
  fs.closeSync(fd2);
  if (!again.equals(data.subarray(100, 116))) throw new Error('read after the Workers differs');

  console.log(
    JSON.stringify({
      arch: process.arch,
      node: process.version,
      addon,
      aiocb: n,
      batch: [written, read],
      workers: codes,
    }),
  );
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
