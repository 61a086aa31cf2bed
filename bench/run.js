#!/usr/bin/env node
// posix-aio benchmark: posix-aio side by side with what Node users use
// today, in one process run, implementations interleaved so drift hits all
// alike. See bench/README.md for what each workload measures and why.
//
//   npm run bench                      256 MiB file, 3 runs per cell
//   npm run bench -- --quick           about a minute
//   npm run bench -- --only randread-4k --runs 5 --size 1024
//   npm run bench -- --json out.json
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHistogram } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AioCb, alignedBuffer, open } from '../dist/index.js';
import { renderSvg } from './svg.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const WORKLOADS = ['randread-4k', 'seqread', 'randwrite-4k', 'randread-4k-direct', 'memory'];
const BS = 4096;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    size: { type: 'string' },
    runs: { type: 'string' },
    seconds: { type: 'string' },
    only: { type: 'string', multiple: true },
    json: { type: 'string' },
    dir: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log(`usage: npm run bench -- [--quick] [--size MiB] [--runs N] [--seconds S] [--only WORKLOAD]... [--json PATH] [--dir DIR]
workloads: ${WORKLOADS.join(', ')}`);
  process.exit(0);
}
for (const w of args.only ?? []) {
  if (!WORKLOADS.includes(w)) {
    console.error(`unknown workload ${w}; known: ${WORKLOADS.join(', ')}`);
    process.exit(2);
  }
}
const quick = args.quick;
const sizeMiB = Number(args.size ?? 256);
const runs = Number(args.runs ?? 3);
const cellSeconds = Number(args.seconds ?? (quick ? 0.4 : 1.5));
const memoryOps = quick ? 1_000_000 : 1_000_000;
if (!(sizeMiB >= 8) || !(runs >= 1) || !(cellSeconds > 0)) {
  console.error('--size must be >= 8 (MiB), --runs >= 1, --seconds > 0');
  process.exit(2);
}
const wanted = (w) => args.only === undefined || args.only.includes(w);
const size = sizeMiB * 1024 * 1024;
const blocks = size / BS;
const dir = fs.mkdtempSync(path.join(args.dir ?? os.tmpdir(), 'posix-aio-bench-'));
const file = path.join(dir, 'data.bin');
const tty = process.stderr.isTTY;

function progress(text) {
  if (tty) process.stderr.write(`\r\x1b[2K${text}`);
  else process.stderr.write(`${text}\n`);
}

function cleanup() {
  fs.rmSync(dir, { recursive: true, force: true });
}
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

// Every 4 KiB block starts with its own index, so reads are checked.
function makeFile() {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(1 << 20);
  for (let off = 0; off < size; off += chunk.length) {
    for (let i = 0; i < chunk.length; i += BS) chunk.writeUInt32LE((off + i) / BS, i);
    fs.writeSync(fd, chunk, 0, chunk.length, off);
    if ((off / chunk.length) % 32 === 0)
      progress(`creating ${sizeMiB} MiB test file: ${Math.round((100 * off) / size)}%`);
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}

function warmCache() {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  for (let off = 0; off < size; off += buf.length) fs.readSync(fd, buf, 0, buf.length, off);
  fs.closeSync(fd);
}

const randBlock = () => Math.floor(Math.random() * blocks);

function check(name, buf, block, n) {
  if (n !== BS || buf.readUInt32LE(0) !== block)
    throw new Error(`${name}: block ${block} read back wrong (${n} bytes)`);
}

// Runs `lanes` closed loops of `one(lane)` for `seconds`; each call returns
// the number of operations it did. Returns ops/s and the latency histogram.
async function closedLoop(lanes, seconds, one) {
  const hist = createHistogram();
  let ops = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      while (performance.now() < end) {
        const s = process.hrtime.bigint();
        const n = await one(lane);
        const d = Number(process.hrtime.bigint() - s);
        for (let i = 0; i < n; i++) hist.record(Math.max(1, d));
        ops += n;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return { opsPerSec: ops / secs, hist };
}

function syncLoop(seconds, one) {
  const hist = createHistogram();
  let ops = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    const s = process.hrtime.bigint();
    one();
    hist.record(Math.max(1, Number(process.hrtime.bigint() - s)));
    ops++;
  }
  return { opsPerSec: ops / ((performance.now() - t0) / 1000), hist };
}

// ---- workloads: each returns a list of cells {impl, qd, run()} ----

async function randreadCells(direct) {
  const flags = direct ? fs.constants.O_RDONLY | fs.constants.O_DIRECT : fs.constants.O_RDONLY;
  const alloc = direct ? () => alignedBuffer(BS) : () => Buffer.alloc(BS);
  const fd = fs.openSync(file, flags);
  const fh = await fs.promises.open(file, flags);
  const af = await open(file, 'r', 0o666, { direct, concurrency: 256 });
  const depths = direct ? [64] : [1, 4, 16, 64];
  const cells = [];
  const bufs = Array.from({ length: 64 }, alloc);
  const batchBufs = Array.from({ length: 64 }, alloc);
  for (const qd of depths) {
    cells.push({
      impl: 'posix-aio',
      qd,
      run: (s) =>
        closedLoop(qd, s, async (lane) => {
          const b = randBlock();
          check('posix-aio', bufs[lane], b, await af.read(bufs[lane], b * BS));
          return 1;
        }),
    });
    if (!direct) {
      cells.push({
        impl: 'posix-aio-aiocb',
        qd,
        run: (s) =>
          closedLoop(qd, s, async (lane) => {
            const b = randBlock();
            check('posix-aio-aiocb', bufs[lane], b, await AioCb.fromMutSlice(fd, b * BS, bufs[lane]).read());
            return 1;
          }),
      });
    }
    if (qd === 64 && !direct) {
      cells.push({
        impl: 'posix-aio-batch',
        qd,
        run: (s) =>
          closedLoop(1, s, async () => {
            const idx = batchBufs.map(() => randBlock());
            const got = await Promise.all(
              af.batch(idx.map((b, i) => ({ op: 'read', buffer: batchBufs[i], position: b * BS }))),
            );
            for (let i = 0; i < idx.length; i++) check('posix-aio-batch', batchBufs[i], idx[i], got[i]);
            return idx.length;
          }),
      });
    }
    cells.push({
      impl: 'fs.promises',
      qd,
      run: (s) =>
        closedLoop(qd, s, async (lane) => {
          const b = randBlock();
          check('fs.promises', bufs[lane], b, (await fh.read(bufs[lane], 0, BS, b * BS)).bytesRead);
          return 1;
        }),
    });
    cells.push({
      impl: 'fs.read',
      qd,
      run: (s) =>
        closedLoop(
          qd,
          s,
          (lane) =>
            new Promise((resolve, reject) => {
              const b = randBlock();
              fs.read(fd, bufs[lane], 0, BS, b * BS, (err, n) => {
                if (err) return reject(err);
                check('fs.read', bufs[lane], b, n);
                resolve(1);
              });
            }),
        ),
    });
    if (qd === 1 && !direct) {
      cells.push({
        impl: 'fs.readSync',
        qd,
        run: async (s) =>
          syncLoop(s, () => {
            const b = randBlock();
            check('fs.readSync', bufs[0], b, fs.readSync(fd, bufs[0], 0, BS, b * BS));
          }),
      });
    }
  }
  const close = async () => {
    fs.closeSync(fd);
    await fh.close();
    await af.close();
  };
  return { cells, close };
}

async function seqreadCells() {
  // Four descriptors: glibc reads one request per descriptor at a time, and
  // one 1 MiB copy at a time leaves the second core idle (bench/README.md).
  const af = await open(file, 'r', 0o666, { fanout: 4 });
  const verify = (n) => {
    if (n !== size) throw new Error(`seqread: read ${n} of ${size} bytes`);
  };
  const once = (fn) => async (s) => {
    // One pass is one operation of `size` bytes; repeat for the cell's time.
    const hist = createHistogram();
    let passes = 0;
    const t0 = performance.now();
    do {
      const st = process.hrtime.bigint();
      verify(await fn());
      hist.record(Number(process.hrtime.bigint() - st));
      passes++;
    } while (performance.now() - t0 < s * 1000);
    return { opsPerSec: passes / ((performance.now() - t0) / 1000), hist };
  };
  const cells = [
    {
      impl: 'posix-aio',
      qd: 4,
      run: once(async () => {
        let n = 0;
        for await (const chunk of af.readChunks({ chunkSize: 1 << 20, depth: 4 })) n += chunk.length;
        return n;
      }),
    },
    {
      impl: 'fs.createReadStream',
      qd: 1,
      run: once(async () => {
        let n = 0;
        for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) n += chunk.length;
        return n;
      }),
    },
    { impl: 'fs.readFile', qd: 1, run: once(async () => (await fs.promises.readFile(file)).length) },
  ];
  return { cells, close: () => af.close(), bytesPerOp: size };
}

async function randwriteCells() {
  const wfile = path.join(dir, 'write.bin');
  fs.writeFileSync(wfile, '');
  fs.truncateSync(wfile, size);
  const fd = fs.openSync(wfile, 'r+');
  const fh = await fs.promises.open(wfile, 'r+');
  const af = await open(wfile, 'r+', 0o666, { concurrency: 256 });
  const bufs = Array.from({ length: 64 }, (_, i) => Buffer.alloc(BS, i + 1));
  const qd = 64;
  // Depth-64 random writes for the cell's time, then one datasync, which is
  // part of the measured time.
  const cell = (impl, write, datasync) => ({
    impl,
    qd,
    run: async (s) => {
      const t0 = performance.now();
      const r = await closedLoop(qd, s, async (lane) => {
        await write(bufs[lane], randBlock() * BS);
        return 1;
      });
      const total = (r.opsPerSec * (performance.now() - t0)) / 1000;
      await datasync();
      r.opsPerSec = total / ((performance.now() - t0) / 1000);
      return r;
    },
  });
  const cells = [
    cell(
      'posix-aio',
      (b, p) => af.write(b, p),
      () => af.datasync(),
    ),
    cell(
      'fs.promises',
      (b, p) => fh.write(b, 0, BS, p),
      () => fh.datasync(),
    ),
    cell(
      'fs.write',
      (b, p) => new Promise((res, rej) => fs.write(fd, b, 0, BS, p, (e) => (e ? rej(e) : res()))),
      () => new Promise((res, rej) => fs.fdatasync(fd, (e) => (e ? rej(e) : res()))),
    ),
  ];
  const close = async () => {
    // Spot-check that the writes landed: every 4 KiB block is zero or one lane's fill.
    const probe = Buffer.alloc(BS);
    for (let i = 0; i < 64; i++) {
      fs.readSync(fd, probe, 0, BS, randBlock() * BS);
      if (probe[0] !== 0 && !probe.equals(Buffer.alloc(BS, probe[0]))) throw new Error('randwrite: torn block');
    }
    fs.closeSync(fd);
    await fh.close();
    await af.close();
  };
  return { cells, close };
}

function directSupported() {
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT);
    try {
      const b = alignedBuffer(BS);
      fs.readSync(fd, b, 0, BS, 0);
    } finally {
      fs.closeSync(fd);
    }
    return undefined;
  } catch (e) {
    return `${e.code ?? e.message}: the file system under ${dir} refuses O_DIRECT (pick another with --dir)`;
  }
}

// ---- memory: RSS growth between 100k and 1M operations ----
async function memoryCheck() {
  const af = await open(file, 'r');
  const bufs = Array.from({ length: 64 }, () => Buffer.alloc(BS));
  let done = 0;
  let rssAt100k = 0;
  let heapAt100k = 0;
  const target = memoryOps;
  await Promise.all(
    bufs.map(async (buf) => {
      while (done < target) {
        const b = randBlock();
        check('memory', buf, b, await af.read(buf, b * BS));
        done++;
        if (done === 100_000) {
          globalThis.gc?.();
          ({ rss: rssAt100k, heapTotal: heapAt100k } = process.memoryUsage());
        }
        if (done % 50_000 === 0) progress(`memory: ${done.toLocaleString()} / ${target.toLocaleString()} operations`);
      }
    }),
  );
  globalThis.gc?.();
  const { rss: rssEnd, heapTotal: heapEnd } = process.memoryUsage();
  await af.close();
  const MiB = 2 ** 20;
  return {
    ops: target,
    rssAt100kMiB: rssAt100k / MiB,
    rssEndMiB: rssEnd / MiB,
    growthMiB: (rssEnd - rssAt100k) / MiB,
    // V8 enlarges its young generation under a high allocation rate: that
    // reservation (heapTotal) is not a per-operation leak, so it is shown apart.
    heapTotalGrowthMiB: (heapEnd - heapAt100k) / MiB,
    growthOutsideHeapMiB: (rssEnd - rssAt100k - (heapEnd - heapAt100k)) / MiB,
  };
}

function machine() {
  let glibc = 'unknown';
  try {
    glibc = execFileSync('ldd', ['--version'], { encoding: 'utf8' })
      .split('\n')[0]
      .replace(/^ldd\s+/, '');
  } catch {
    glibc = process.report?.getReport?.().header?.glibcVersionRuntime ?? 'unknown';
  }
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    libuv: process.versions.uv,
    glibc,
    kernel: os.release(),
    UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '(default 4)',
    UV_USE_IO_URING: process.env.UV_USE_IO_URING ?? '(unset: off on Node 20)',
  };
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const started = Date.now();
  const info = machine();
  makeFile();
  progress('warming the page cache');
  warmCache();
  // Memory first, before other workloads leave garbage that skews RSS.
  let memory;
  if (wanted('memory')) memory = await memoryCheck();
  const groups = [];
  if (wanted('randread-4k')) groups.push(['randread-4k', await randreadCells(false), BS]);
  if (wanted('seqread')) {
    const g = await seqreadCells();
    groups.push(['seqread', g, g.bytesPerOp]);
  }
  if (wanted('randwrite-4k')) groups.push(['randwrite-4k', await randwriteCells(), BS]);
  const skipped = {};
  if (wanted('randread-4k-direct')) {
    const why = directSupported();
    if (why === undefined) groups.push(['randread-4k-direct', await randreadCells(true), BS]);
    else skipped['randread-4k-direct'] = why;
  }

  const totalCells = groups.reduce((n, [, g]) => n + g.cells.length, 0) * runs;
  let doneCells = 0;
  const samples = new Map();
  for (const [workload, g, bytes] of groups) {
    for (let r = 0; r < runs; r++) {
      // Interleaved: every implementation once per run.
      for (const cell of g.cells) {
        progress(`[${++doneCells}/${totalCells}] ${workload} ${cell.impl} qd=${cell.qd} run ${r + 1}/${runs}`);
        const { opsPerSec, hist } = await cell.run(cellSeconds);
        const key = `${workload}\u0000${cell.impl}\u0000${cell.qd}`;
        if (!samples.has(key)) samples.set(key, { workload, impl: cell.impl, qd: cell.qd, bytes, runs: [] });
        samples.get(key).runs.push({ opsPerSec, p50Us: hist.percentile(50) / 1000, p99Us: hist.percentile(99) / 1000 });
      }
    }
    await g.close();
  }

  const rows = [...samples.values()].map((s) => {
    const ops = median(s.runs.map((x) => x.opsPerSec));
    return {
      workload: s.workload,
      impl: s.impl,
      qd: s.qd,
      opsPerSec: Math.round(ops),
      mbPerSec: Math.round(((ops * s.bytes) / 1e6) * 10) / 10,
      p50Us: Math.round(median(s.runs.map((x) => x.p50Us)) * 10) / 10,
      p99Us: Math.round(median(s.runs.map((x) => x.p99Us)) * 10) / 10,
    };
  });

  progress('');
  if (tty) process.stderr.write('\r\x1b[2K');

  printTable(rows, info, skipped, memory);
  const targets = checkTargets(rows, memory);
  printTargets(targets);

  const result = {
    date: new Date().toISOString(),
    options: { sizeMiB, runs, cellSeconds, quick },
    machine: info,
    rows,
    skipped,
    memory,
    targets,
    seconds: Math.round((Date.now() - started) / 1000),
  };
  const resultsDir = path.join(here, 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const jsonPath = args.json ?? path.join(resultsDir, 'latest.json');
  fs.writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  fs.writeFileSync(path.join(resultsDir, 'latest.svg'), renderSvg(rows, info));
  console.log(`\nwrote ${path.relative(process.cwd(), jsonPath)} and bench/results/latest.svg in ${result.seconds}s`);
}

function ratioTo(rows, row, impl) {
  const base = rows.find((r) => r.workload === row.workload && r.qd === row.qd && r.impl === impl);
  return base ? row.opsPerSec / base.opsPerSec : undefined;
}

function printTable(rows, info, skipped, memory) {
  console.log(
    `posix-aio benchmark: ${info.cpus} CPUs (${info.cpuModel}), Node ${info.node}, libuv ${info.libuv}, ${info.glibc}`,
  );
  console.log(
    `UV_THREADPOOL_SIZE=${info.UV_THREADPOOL_SIZE} UV_USE_IO_URING=${info.UV_USE_IO_URING}; ${sizeMiB} MiB file, ${runs} runs of ${cellSeconds}s, medians\n`,
  );
  const head = ['workload', 'impl', 'qd', 'ops/s', 'MB/s', 'p50 us', 'p99 us', 'vs fs.promises'];
  const body = rows.map((r) => {
    const base = r.workload === 'seqread' ? 'fs.createReadStream' : 'fs.promises';
    const ratio = ratioTo(rows, r, base);
    return [
      r.workload,
      r.impl,
      String(r.qd),
      r.opsPerSec.toLocaleString('en-US'),
      r.mbPerSec.toFixed(1),
      r.p50Us.toFixed(1),
      r.p99Us.toFixed(1),
      ratio === undefined ? '' : `${ratio.toFixed(2)}x${base === 'fs.promises' ? '' : ' (vs stream)'}`,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cols) => cols.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  let last;
  for (const b of body) {
    if (last !== undefined && last !== b[0]) console.log('');
    last = b[0];
    console.log(line(b));
  }
  for (const [w, why] of Object.entries(skipped)) console.log(`\n${w}: skipped: ${why}`);
  if (memory !== undefined) {
    console.log(
      `\nmemory: RSS ${memory.rssAt100kMiB.toFixed(1)} MiB after 100k operations, ${memory.rssEndMiB.toFixed(1)} MiB after ${(memory.ops / 1e6).toFixed(0)}M: growth ${memory.growthMiB.toFixed(1)} MiB, of which V8 heap reservation (heapTotal) ${memory.heapTotalGrowthMiB.toFixed(1)} MiB, outside the JavaScript heap ${memory.growthOutsideHeapMiB.toFixed(1)} MiB`,
    );
  }
}

function checkTargets(rows, memory) {
  const get = (w, impl, qd) => rows.find((r) => r.workload === w && r.impl === impl && r.qd === qd)?.opsPerSec;
  const t = [];
  const ratio = (name, w, qd, a, b, min) => {
    const x = get(w, a, qd);
    const y = get(w, b, qd);
    if (x === undefined || y === undefined) return;
    t.push({ target: name, ratio: Math.round((x / y) * 100) / 100, min, ok: x / y >= min });
  };
  ratio('randread-4k qd64: posix-aio vs fs.promises', 'randread-4k', 64, 'posix-aio', 'fs.promises', 2.0);
  ratio('randread-4k qd64: posix-aio vs fs.read', 'randread-4k', 64, 'posix-aio', 'fs.read', 1.0);
  ratio('randread-4k qd64: posix-aio-batch vs fs.read', 'randread-4k', 64, 'posix-aio-batch', 'fs.read', 1.5);
  ratio('randread-4k qd64: posix-aio-aiocb vs fs.promises', 'randread-4k', 64, 'posix-aio-aiocb', 'fs.promises', 1.5);
  ratio('randread-4k qd1: posix-aio vs fs.promises', 'randread-4k', 1, 'posix-aio', 'fs.promises', 1.0);
  const seqA = get('seqread', 'posix-aio', 4);
  const seqB = get('seqread', 'fs.createReadStream', 1);
  if (seqA !== undefined && seqB !== undefined) {
    t.push({
      target: 'seqread: posix-aio vs fs.createReadStream',
      ratio: Math.round((seqA / seqB) * 100) / 100,
      min: 1.0,
      ok: seqA / seqB >= 1,
    });
  }
  ratio('randwrite-4k: posix-aio vs fs.promises', 'randwrite-4k', 64, 'posix-aio', 'fs.promises', 1.5);
  ratio('randread-4k-direct: posix-aio vs fs.promises', 'randread-4k-direct', 64, 'posix-aio', 'fs.promises', 2.0);
  if (memory !== undefined) {
    t.push({
      target: 'memory: RSS growth outside the JavaScript heap, 100k -> 1M operations (MiB)',
      value: Math.round(memory.growthOutsideHeapMiB * 10) / 10,
      max: 16,
      ok: memory.growthOutsideHeapMiB < 16,
    });
    t.push({
      target: 'memory: RSS growth 100k -> 1M operations (MiB)',
      value: Math.round(memory.growthMiB * 10) / 10,
      max: 16,
      ok: memory.growthMiB < 16,
    });
  }
  return t;
}

function printTargets(targets) {
  if (targets.length === 0) return;
  console.log('\ntargets (issue 4):');
  for (const t of targets) {
    const v = t.ratio !== undefined ? `${t.ratio.toFixed(2)}x (need >= ${t.min}x)` : `${t.value} (need < ${t.max})`;
    console.log(`  ${t.ok ? 'met    ' : 'NOT MET'}  ${t.target}: ${v}`);
  }
}

try {
  await main();
} finally {
  cleanup();
}
