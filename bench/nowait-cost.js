#!/usr/bin/env node
// What an inline (page-cache) read costs the event loop: the measurements
// behind the limits of src/api/nowait.ts (bench/README.md, "The page-cache
// fast path"). Needs a build (`npm run build:ts`).
//
//   node bench/nowait-cost.js [--size-mib 256] [--seconds 0.3]
//
// 1. preadNowait per call, by size (cached file, random offsets): the
//    per-call cost and the copy rate behind callBytes and byteCostNs.
// 2. `await readThrough(...)` of cached 4 KiB blocks in a depth-1 loop, no
//    turn budget: the per-read cost behind callCostNs.
// 3. The same loop with the default limits and fs.read as the fallback: how
//    long one loop turn lasts (gaps between setImmediate callbacks) and the
//    loop delay, against the same loop with every read through fs.read.
// 4. The first read after posix_fadvise(DONTNEED): the cost of a miss.
// 5. Cold random 4 KiB reads at depth 64 through readThrough over AioCb, with
//    misses charged 0, 12 or 20 µs: throughput against loop delay, and the
//    time each miss took (the basis of missCostNs).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createNowaitState, nowaitInternals, readThrough, setNowaitLimits, stats } from '../dist/api/nowait.js';
import { FadviseAdvice, HAVE_RWF_NOWAIT, posixFadvise, preadNowait } from '../dist/core/nowait.js';
import { AioCb } from '../dist/index.js';

const { values } = parseArgs({
  options: { 'size-mib': { type: 'string', default: '256' }, seconds: { type: 'string', default: '0.3' } },
});
if (!HAVE_RWF_NOWAIT) {
  console.log('this build has no preadv2(RWF_NOWAIT): nothing to measure');
  process.exit(0);
}
const size = Number(values['size-mib']) * 2 ** 20;
const ms = Number(values.seconds) * 1000;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'posix-aio-nowait-'));
const file = path.join(dir, 'data.bin');
fs.writeFileSync(file, Buffer.alloc(size, 7));
const fd = fs.openSync(file, 'r');
// Clean pages only: DONTNEED (step 4) leaves dirty ones in the cache.
fs.fsyncSync(fd);
const warm = () => {
  const b = Buffer.alloc(1 << 20);
  for (let o = 0; o < size; o += b.length) fs.readSync(fd, b, 0, b.length, o);
};
const randPos = (bs) => Math.floor(Math.random() * (size / bs)) * bs;

try {
  warm();
  console.log('1. preadNowait per call (cached, random offsets)');
  for (const bs of [4096, 65536, 262144, 1 << 20]) {
    const buf = Buffer.alloc(bs);
    let n = 0;
    let max = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      const s = process.hrtime.bigint();
      if (preadNowait(fd, buf, randPos(bs)) !== bs) throw new Error('short inline read of a cached file');
      max = Math.max(max, Number(process.hrtime.bigint() - s));
      n++;
    }
    const us = ((performance.now() - t0) * 1000) / n;
    console.log(
      `   ${String(bs).padStart(8)} B: ${us.toFixed(2)} us/call, ${(bs / us / 1000).toFixed(2)} GB/s, slowest ${(max / 1000).toFixed(0)} us`,
    );
  }

  const state = createNowaitState(fd);
  const buf = Buffer.alloc(4096);
  setNowaitLimits({ turnBudgetNs: 1e15 });
  const never = () => Promise.reject(new Error('a cached read went through AIO'));
  let n = 0;
  let t0 = performance.now();
  while (performance.now() - t0 < ms) {
    await readThrough(state, fd, buf, 0, 4096, randPos(4096), never);
    n++;
  }
  const per = ((performance.now() - t0) * 1000) / n;
  console.log(`2. await readThrough, cached 4 KiB, depth 1: ${per.toFixed(2)} us/op (${Math.round(1e6 / per)} ops/s)`);

  setNowaitLimits();
  const viaFsRead = (o, l, p) => new Promise((res, rej) => fs.read(fd, buf, o, l, p, (e, k) => (e ? rej(e) : res(k))));
  for (const [name, one] of [
    ['inline + fs.read fallback', (pos) => readThrough(state, fd, buf, 0, 4096, pos, viaFsRead)],
    ['fs.read only', (pos) => viaFsRead(0, 4096, pos)],
  ]) {
    const gaps = [];
    let last = performance.now();
    let stop = false;
    const tick = () => {
      const now = performance.now();
      gaps.push(now - last);
      last = now;
      if (!stop) setImmediate(tick);
    };
    setImmediate(tick);
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    n = 0;
    t0 = performance.now();
    while (performance.now() - t0 < 3 * ms) {
      await one(randPos(4096));
      n++;
    }
    stop = true;
    loop.disable();
    gaps.sort((a, b) => a - b);
    const q = (p) => gaps[Math.floor(p * (gaps.length - 1))].toFixed(2);
    console.log(
      `3. ${name}: ${Math.round(n / ((3 * ms) / 1000))} ops/s; loop turn gaps p99 ${q(0.99)} ms, p99.9 ${q(0.999)} ms, max ${q(1)} ms; monitorEventLoopDelay p99 ${(loop.percentile(99) / 1e6).toFixed(2)} ms`,
    );
  }
  console.log(`   fast-path counters: ${JSON.stringify(stats(state))}`);

  posixFadvise(fd, 0, 0, FadviseAdvice.POSIX_FADV_DONTNEED);
  const s = process.hrtime.bigint();
  const r = preadNowait(fd, buf, randPos(4096));
  const first = Number(process.hrtime.bigint() - s) / 1000;
  const s2 = process.hrtime.bigint();
  const r2 = preadNowait(fd, buf, randPos(4096));
  const second = Number(process.hrtime.bigint() - s2) / 1000;
  console.log(
    `4. after DONTNEED: ${r} in ${first.toFixed(1)} us, then ${r2} in ${second.toFixed(1)} us (-11 is EAGAIN: a miss)`,
  );

  console.log('5. cold 4 KiB random reads, depth 64, readThrough over AioCb');
  for (const missCostNs of [0, 12_000, 20_000, 0, 12_000, 20_000]) {
    setNowaitLimits({ missCostNs });
    const missUs = [];
    nowaitInternals.setPread((...a) => {
      const t = process.hrtime.bigint();
      const got = preadNowait(...a);
      if (got < 0) missUs.push(Number(process.hrtime.bigint() - t) / 1000);
      return got;
    });
    posixFadvise(fd, 0, 0, FadviseAdvice.POSIX_FADV_DONTNEED);
    const cold = createNowaitState(fd);
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    let ops = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        const b = Buffer.alloc(4096);
        while (performance.now() - start < 3 * ms) {
          await readThrough(cold, fd, b, 0, 4096, randPos(4096), (o, l, p) =>
            AioCb.fromMutSlice(fd, p, b.subarray(o, o + l)).read(),
          );
          ops++;
        }
      }),
    );
    loop.disable();
    nowaitInternals.setPread(undefined);
    missUs.sort((a, b) => a - b);
    const q = (p) => (missUs.length > 0 ? missUs[Math.floor(p * (missUs.length - 1))].toFixed(1) : '-');
    const mean = missUs.reduce((a, b) => a + b, 0) / Math.max(1, missUs.length);
    console.log(
      `   missCostNs ${String(missCostNs).padStart(5)}: ${Math.round(ops / ((3 * ms) / 1000))} ops/s, loop delay p99 ${(loop.percentile(99) / 1e6).toFixed(2)} ms; ${missUs.length} misses, p50 ${q(0.5)} p90 ${q(0.9)} mean ${mean.toFixed(1)} us; ${JSON.stringify(stats(cold))}`,
    );
  }
  setNowaitLimits();
} finally {
  fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
}
