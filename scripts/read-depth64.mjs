#!/usr/bin/env node
// Depth-64 AioFile.read throughput: 200,000 random 4 KiB reads of a cached
// 64 MiB file through one AioFile, 64 reads in flight, after a 20,000-read
// warm-up. Compare two builds by running it against each dist directory in
// turn (alternate the runs: the machine is shared).
//
//   npm run build:ts && node scripts/read-depth64.mjs [dist-dir] [--old]
//
// --old calls the pre-FileHandle signature read(buffer, position).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const old = args.includes('--old');
const dist = path.resolve(args.find((a) => !a.startsWith('--')) ?? 'dist');
const { open } = await import(pathToFileURL(path.join(dist, 'index.js')).href);
const N = 200_000;
const DEPTH = 64;
const BS = 4096;
const SIZE = 64 << 20;
const p = path.join(os.tmpdir(), 'posix-aio-read-depth64.bin');
if (!fs.existsSync(p) || fs.statSync(p).size !== SIZE) fs.writeFileSync(p, Buffer.alloc(SIZE, 7));
fs.readFileSync(p); // into the page cache
const file = await open(p, 'r');
let x = 12345;
const next = () => ((x = (x * 1103515245 + 12345) & 0x7fffffff) % (SIZE / BS)) * BS;
const read = old ? (b, pos) => file.read(b, pos) : (b, pos) => file.read(b, 0, BS, pos);
async function run(n) {
  let issued = 0;
  const worker = async () => {
    const b = Buffer.allocUnsafe(BS);
    while (issued < n) {
      issued++;
      await read(b, next());
    }
  };
  const t = performance.now();
  await Promise.all(Array.from({ length: DEPTH }, worker));
  return n / ((performance.now() - t) / 1000);
}
await run(20_000);
console.log(`${dist}${old ? ' (old signature)' : ''}: ${Math.round(await run(N))} reads/s at depth ${DEPTH}`);
await file.close();
