#!/usr/bin/env node
// Random reads in batches: each batch is one lio_listio() of `--batch` reads
// at random block-aligned offsets. Prints reads per second, then checks every
// byte read against the file as read with plain fs.
//
//   npm run build:ts && node examples/random-reader.mjs <file> [--reads 20000] [--block 4096] [--batch 64] [--seed 1]
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { open } from '../dist/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    reads: { type: 'string', default: '20000' },
    block: { type: 'string', default: '4096' },
    batch: { type: 'string', default: '64' },
    seed: { type: 'string', default: '1' },
  },
});
const path = positionals[0];
if (path === undefined) {
  console.error('usage: node examples/random-reader.mjs <file> [--reads N] [--block BYTES] [--batch N] [--seed N]');
  process.exit(2);
}
const reads = Number(values.reads);
const batchSize = Number(values.batch);
const size = fs.statSync(path).size;
const block = Math.min(Number(values.block), size);
if (!(reads > 0 && batchSize > 0 && block > 0)) {
  console.error('random-reader: --reads, --batch and --block must be positive, and the file must not be empty');
  process.exit(2);
}
const blocks = Math.floor(size / block);

// mulberry32: the same seed gives the same offsets.
let state = Number(values.seed) >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const reference = fs.openSync(path, 'r');
const expected = Buffer.alloc(block);
const file = await open(path, 'r');
let done = 0;
let mismatches = 0;
let busyMs = 0;
try {
  while (done < reads) {
    const n = Math.min(batchSize, reads - done);
    const ops = [];
    for (let i = 0; i < n; i++) {
      const position = Math.floor(random() * blocks) * block;
      ops.push({ op: 'read', buffer: Buffer.alloc(block), position });
    }
    const t0 = performance.now();
    const results = await Promise.all(file.batch(ops));
    busyMs += performance.now() - t0;
    // Verification runs outside the timed section.
    for (let i = 0; i < n; i++) {
      const { buffer, position } = ops[i];
      const got = fs.readSync(reference, expected, 0, block, position);
      if (results[i] !== got || !buffer.subarray(0, got).equals(expected.subarray(0, got))) mismatches++;
    }
    done += n;
  }
} finally {
  await file.close();
  fs.closeSync(reference);
}

const opsPerSec = (reads / busyMs) * 1000;
const mibPerSec = (opsPerSec * block) / (1 << 20);
console.log(
  `random-reader: ${reads} reads of ${block} B in batches of ${batchSize} from ${path}: ` +
    `${Math.round(opsPerSec)} ops/s, ${mibPerSec.toFixed(1)} MiB/s`,
);
console.log(`verified ${reads} reads against fs.readSync: ${mismatches} mismatches`);
if (mismatches > 0) process.exitCode = 1;
