// Quick side-by-side check for the native core: 4 KiB random reads from a
// cached file at one queue depth, AioCb.read() against fs.promises and fs.read.
// Usage: node bench/aiocb-qd.js [--depth 64] [--seconds 2] [--size-mib 256]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AioCb, open } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    depth: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '2' },
    'size-mib': { type: 'string', default: '256' },
    runs: { type: 'string', default: '3' },
  },
});
const depth = Number(values.depth);
const seconds = Number(values.seconds);
const size = Number(values['size-mib']) * 1024 * 1024;
const blocks = size / 4096;
const file_ = path.join(os.tmpdir(), `posix-aio-qd-${process.pid}.bin`);

function makeFile() {
  const fd = fs.openSync(file_, 'w');
  const chunk = Buffer.alloc(1 << 20);
  for (let off = 0; off < size; off += chunk.length) {
    for (let i = 0; i < chunk.length; i += 4096) chunk.writeUInt32LE((off + i) / 4096, i);
    fs.writeSync(fd, chunk, 0, chunk.length, off);
  }
  fs.closeSync(fd);
  fs.readFileSync(file_); // warm the page cache
}

const rnd = () => Math.floor(Math.random() * blocks) * 4096;

async function run(name, one) {
  let ops = 0;
  const end = performance.now() + seconds * 1000;
  const lanes = [];
  for (let l = 0; l < depth; l++) {
    const buf = Buffer.alloc(4096);
    lanes.push(
      (async () => {
        while (performance.now() < end) {
          const pos = rnd();
          const n = await one(buf, pos);
          if (n !== 4096 || buf.readUInt32LE(0) !== pos / 4096) throw new Error(`${name}: bad read at ${pos}`);
          ops++;
        }
      })(),
    );
  }
  const t0 = performance.now();
  await Promise.all(lanes);
  return ops / ((performance.now() - t0) / 1000);
}

makeFile();
const fd = fs.openSync(file_, 'r');
const fh = await fs.promises.open(file_, 'r');
const file = await open(file_, 'r');
const impls = {
  'AioCb.read': (buf, pos) => AioCb.fromMutSlice(fd, pos, buf).read(),
  'file.read': async (buf, pos) => (await file.read(buf, 0, buf.length, pos)).bytesRead,
  'fs.promises': async (buf, pos) => (await fh.read(buf, 0, 4096, pos)).bytesRead,
  'fs.read': (buf, pos) => new Promise((res, rej) => fs.read(fd, buf, 0, 4096, pos, (e, n) => (e ? rej(e) : res(n)))),
};
const results = Object.fromEntries(Object.keys(impls).map((k) => [k, []]));
for (let r = 0; r < Number(values.runs); r++) {
  for (const [name, one] of Object.entries(impls)) results[name].push(await run(name, one));
}
const median = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];
const base = median(results['fs.promises']);
console.log(`4 KiB random reads, depth ${depth}, ${seconds}s x ${values.runs} runs (median ops/s)`);
for (const [name, arr] of Object.entries(results)) {
  const m = median(arr);
  console.log(
    `${name.padEnd(12)} ${Math.round(m).toString().padStart(8)} ops/s  ${(m / base).toFixed(2)}x fs.promises`,
  );
}
await fh.close();
fs.closeSync(fd);
await file.close();
fs.unlinkSync(file_);
