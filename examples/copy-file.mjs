#!/usr/bin/env node
// Copies a file with POSIX AIO: readChunks() keeps reads in flight ahead of
// writeChunks(), which keeps writes in flight behind it.
//
//   npm run build:ts && node examples/copy-file.mjs <src> <dst>
import { open } from '../dist/index.js';

const [src, dst] = process.argv.slice(2);
if (src === undefined || dst === undefined) {
  console.error('usage: node examples/copy-file.mjs <src> <dst>');
  process.exit(2);
}

const started = performance.now();
const input = await open(src, 'r');
try {
  const output = await open(dst, 'w');
  try {
    const chunks = input.readChunks({ chunkSize: 1 << 20, depth: 4 });
    const bytes = await output.writeChunks(chunks, { position: 0, depth: 4 });
    await output.datasync();
    const ms = performance.now() - started;
    console.log(`copied ${bytes} bytes from ${src} to ${dst} in ${ms.toFixed(1)} ms`);
  } finally {
    await output.close();
  }
} finally {
  await input.close();
}
