// Smoke test of an installed posix-aio on a platform the full suite does not
// run on (test/portability/run.sh runs it with the x64 prebuild and, under
// qemu, with an arm64 Node): Workers terminated with reads in flight, then one
// AioCb read with its bytes checked and one file.batch. Prints one JSON line.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const url = pathToFileURL(require.resolve('posix-aio')).href;
const pkg = path.dirname(require.resolve('posix-aio/package.json'));
const addon = path.relative(pkg, createRequire(path.join(pkg, 'package.json'))('node-gyp-build').resolve(pkg));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posix-aio-smoke-'));
try {
  const p = path.join(dir, 'data.bin');
  const data = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => (i * 31 + 7) & 0xff));
  fs.writeFileSync(p, data);

  // Workers terminated while their reads are in flight, 20 times, before the
  // main thread loads the addon: each Worker's exit is then the addon's last
  // user, and a build that can be unloaded while its threads still run code
  // (no -z nodelete) crashes the process here.
  const src = `
    const { parentPort, workerData } = require('node:worker_threads');
    const fs = require('node:fs');
    import(workerData.url).then(async ({ AioCb }) => {
      const fds = [0, 1, 2, 3].map(() => fs.openSync(workerData.path, 'r'));
      for (let i = 0; i < 1000; i++) {
        AioCb.fromMutSlice(fds[i % 4], (i * 64) % 65536, Buffer.alloc(64)).read().catch(() => {});
      }
      parentPort.postMessage('submitted');
      for (;;) await AioCb.fromMutSlice(fds[0], 0, Buffer.alloc(512)).read();
    }, (e) => parentPort.postMessage(String(e)));
  `;
  const codes = [];
  for (let round = 0; round < 20; round++) {
    const w = new Worker(src, { eval: true, workerData: { path: p, url } });
    const m = await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    if (m !== 'submitted') throw new Error(`worker: ${m}`);
    codes.push(await w.terminate());
  }
  if (codes.some((c) => c !== 1)) throw new Error(`terminate codes ${codes}`);

  const { AioCb, open } = await import(url);

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

  console.log(
    JSON.stringify({
      arch: process.arch,
      node: process.version,
      addon,
      workersTerminated: codes.length,
      aiocb: n,
      batch: [written, read],
    }),
  );
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
