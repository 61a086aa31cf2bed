#!/usr/bin/env node
// posix-aio benchmark: posix-aio side by side with what Node users use
// today, in one process run, implementations interleaved so drift hits all
// alike. See bench/README.md for what each workload measures and why.
//
//   npm run bench                      256 MiB file, 3 runs per cell
//   npm run bench -- --quick           about a minute
//   npm run bench -- --only randread-4k --runs 5 --size 1024
//   npm run bench -- --json out.json
//
// The io_uring peers (`fs.promises+io_uring`, `fs.read+io_uring`, ...) run in
// a child process of this same script started with UV_USE_IO_URING=1 (libuv
// reads it once, at start-up); the parent asks the child for one cell at a
// time, so those cells interleave with the others like any cell.
import { execFileSync, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createNowaitState, readThrough } from '../dist/api/nowait.js';
import { FadviseAdvice, posixFadvise } from '../dist/core/nowait.js';
import { AioCb, alignedBuffer, open } from '../dist/index.js';
import { renderSvg } from './svg.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const WORKLOADS = ['randread-4k', 'seqread', 'randwrite-4k', 'randread-4k-direct', 'randread-4k-cold', 'memory'];
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
    'no-io-uring': { type: 'boolean', default: false },
    // Internal: this process is the io_uring child (see the header).
    'child-file': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log(`usage: npm run bench -- [--quick] [--size MiB] [--runs N] [--seconds S] [--only WORKLOAD]... [--json PATH] [--dir DIR] [--no-io-uring]
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
const child = args['child-file'] !== undefined;
const dir = child
  ? path.dirname(args['child-file'])
  : fs.mkdtempSync(path.join(args.dir ?? os.tmpdir(), 'posix-aio-bench-'));
const file = child ? args['child-file'] : path.join(dir, 'data.bin');
const tty = process.stderr.isTTY && !child;

function progress(text) {
  if (child) return;
  if (tty) process.stderr.write(`\r\x1b[2K${text}`);
  else process.stderr.write(`${text}\n`);
}

function cleanup() {
  if (!child) fs.rmSync(dir, { recursive: true, force: true });
}
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

// AioFile.read has fs.promises' shape: read(buffer, offset, length, position)
// resolving to { bytesRead }.
function readerOf(af) {
  return async (buf, pos) => (await af.read(buf, 0, buf.byteLength, pos)).bytesRead;
}

// Whether AioFile has the page-cache fast path (its stats() comes with it).
// Until then `nowait: true` and `nowait: false` files both read through AIO.
let nowaitIntegrated;
async function openAio(p, flags, options) {
  const af = await open(p, flags, 0o666, options);
  nowaitIntegrated ??= typeof af.stats === 'function';
  return af;
}

// Drops the file's clean pages (no root needed): the cold-cache workload.
function dropCache(p = file) {
  const fd = fs.openSync(p, 'r');
  try {
    posixFadvise(fd, 0, 0, FadviseAdvice.POSIX_FADV_DONTNEED);
  } finally {
    fs.closeSync(fd);
  }
}

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

// Cells of one 4 KiB random-read workload. `mode`: 'warm', 'direct' (O_DIRECT,
// aligned buffers) or 'cold' (pages dropped before each cell: see `before`).
// `peersOnly` builds just the fs implementations (the io_uring child).
async function randreadCells(mode, peersOnly = false) {
  const direct = mode === 'direct';
  const cold = mode === 'cold';
  const flags = direct ? fs.constants.O_RDONLY | fs.constants.O_DIRECT : fs.constants.O_RDONLY;
  const alloc = direct ? () => alignedBuffer(BS) : () => Buffer.alloc(BS);
  const fd = fs.openSync(file, flags);
  const fh = await fs.promises.open(file, flags);
  const files = [];
  const aio = async (options) => {
    const af = await openAio(file, 'r', { direct, concurrency: 256, ...options });
    files.push(af);
    return readerOf(af);
  };
  // posix-aio with the page-cache fast path (its default) and without it.
  const fast = peersOnly ? undefined : await aio({ nowait: !direct });
  const slow = peersOnly || direct ? undefined : await aio({ nowait: false });
  const batchFile = peersOnly || direct || cold ? undefined : files[0];
  // Until AioFile integrates the fast path, a preview row composes it the way
  // AioFile will (src/api/nowait.ts's readThrough, AIO for misses), so its
  // effect is measured now; the row disappears once AioFile has it.
  let preview;
  if (!peersOnly && !direct && nowaitIntegrated === false) {
    const state = createNowaitState(fd);
    preview = (buf, pos) =>
      readThrough(state, fd, buf, 0, buf.byteLength, pos, (o, l, p) =>
        AioCb.fromMutSlice(fd, p, buf.subarray(o, o + l)).read(),
      );
  }
  const depths = direct ? [64] : cold ? [1, 64] : [1, 4, 16, 64];
  const cells = [];
  const bufs = Array.from({ length: 64 }, alloc);
  const batchBufs = Array.from({ length: 64 }, alloc);
  const before = cold ? () => dropCache() : undefined;
  const lanes = (impl, qd, readAt) => ({
    impl,
    qd,
    before,
    run: (s) =>
      closedLoop(qd, s, async (lane) => {
        const b = randBlock();
        check(impl, bufs[lane], b, await readAt(bufs[lane], b * BS));
        return 1;
      }),
  });
  for (const qd of depths) {
    if (fast !== undefined) cells.push(lanes('posix-aio', qd, fast));
    if (slow !== undefined && (qd === 1 || qd === 64)) cells.push(lanes('posix-aio-aio', qd, slow));
    if (preview !== undefined && (qd === 1 || qd === 64)) cells.push(lanes('posix-aio-nowait-preview', qd, preview));
    if (!peersOnly && mode === 'warm') {
      cells.push(lanes('posix-aio-aiocb', qd, (buf, pos) => AioCb.fromMutSlice(fd, pos, buf).read()));
    }
    if (qd === 64 && batchFile !== undefined) {
      cells.push({
        impl: 'posix-aio-batch',
        qd,
        run: (s) =>
          closedLoop(1, s, async () => {
            const idx = batchBufs.map(() => randBlock());
            const got = await Promise.all(
              batchFile.batch(idx.map((b, i) => ({ op: 'read', buffer: batchBufs[i], position: b * BS }))),
            );
            for (let i = 0; i < idx.length; i++) check('posix-aio-batch', batchBufs[i], idx[i], got[i]);
            return idx.length;
          }),
      });
    }
    cells.push(lanes('fs.promises', qd, async (buf, pos) => (await fh.read(buf, 0, BS, pos)).bytesRead));
    cells.push(
      lanes(
        'fs.read',
        qd,
        (buf, pos) =>
          new Promise((resolve, reject) => {
            fs.read(fd, buf, 0, BS, pos, (err, n) => (err ? reject(err) : resolve(n)));
          }),
      ),
    );
    if (qd === 1 && mode === 'warm' && !peersOnly) {
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
    for (const af of files) await af.close();
  };
  return { cells, close };
}

async function seqreadCells(peersOnly = false) {
  // Four descriptors: glibc reads one request per descriptor at a time, and
  // one 1 MiB copy at a time leaves the second core idle (bench/README.md).
  const af = peersOnly ? undefined : await openAio(file, 'r', { fanout: 4 });
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
  // The whole file in 1 MiB reads, `depth` in flight, in order of offset.
  const CHUNK = 1 << 20;
  const chunked = (depth, readAt) => async () => {
    const bufs = Array.from({ length: depth }, () => Buffer.allocUnsafe(CHUNK));
    let next = 0;
    let total = 0;
    await Promise.all(
      bufs.map(async (buf) => {
        while (next < size) {
          const pos = next;
          next += CHUNK;
          // Not `total += await ...`: that reads `total` before the await.
          const n = await readAt(buf, Math.min(CHUNK, size - pos), pos);
          total += n;
        }
      }),
    );
    return total;
  };
  const fh = await fs.promises.open(file, 'r');
  const fd = fs.openSync(file, 'r');
  const cells = [
    ...(af === undefined
      ? []
      : [
          {
            impl: 'posix-aio',
            qd: 4,
            run: once(async () => {
              let n = 0;
              for await (const chunk of af.readChunks({ chunkSize: CHUNK, depth: 4 })) n += chunk.length;
              return n;
            }),
          },
        ]),
    {
      impl: 'fs.promises',
      qd: 4,
      run: once(chunked(4, async (buf, len, pos) => (await fh.read(buf, 0, len, pos)).bytesRead)),
    },
    {
      impl: 'fs.read',
      qd: 4,
      run: once(
        chunked(
          4,
          (buf, len, pos) =>
            new Promise((resolve, reject) => fs.read(fd, buf, 0, len, pos, (e, n) => (e ? reject(e) : resolve(n)))),
        ),
      ),
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
  const close = async () => {
    await af?.close();
    await fh.close();
    fs.closeSync(fd);
  };
  return { cells, close, bytesPerOp: size };
}

async function randwriteCells() {
  const wfile = path.join(dir, 'write.bin');
  fs.writeFileSync(wfile, '');
  fs.truncateSync(wfile, size);
  const fd = fs.openSync(wfile, 'r+');
  const fh = await fs.promises.open(wfile, 'r+');
  const af = await openAio(wfile, 'r+', { concurrency: 256 });
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
      (b, p) => af.write(b, 0, BS, p),
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
  // Through AIO (nowait: false): native requests are where a per-operation
  // leak could hide; an inline read allocates nothing outside the JS heap.
  const af = await openAio(file, 'r', { nowait: false });
  const readAt = readerOf(af);
  const bufs = Array.from({ length: 64 }, () => Buffer.alloc(BS));
  let done = 0;
  let rssAt100k = 0;
  let heapAt100k = 0;
  const target = memoryOps;
  await Promise.all(
    bufs.map(async (buf) => {
      while (done < target) {
        const b = randBlock();
        check('memory', buf, b, await readAt(buf, b * BS));
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

// Runs one cell: drops the cache first when the cell asks, and records the
// event-loop delay (p99 of a 1 ms timer's lateness) while it runs.
async function measure(cell, seconds) {
  cell.before?.();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const { opsPerSec, hist } = await cell.run(seconds);
  loop.disable();
  return {
    opsPerSec,
    p50Us: hist.percentile(50) / 1000,
    p99Us: hist.percentile(99) / 1000,
    loopP99Ms: loop.count > 0 ? loop.percentile(99) / 1e6 : undefined,
  };
}

// ---- io_uring peers: a child process with UV_USE_IO_URING=1 ----

// The fs implementations measured again with io_uring, per workload and depth.
const IO_URING_PEERS = {
  'randread-4k': { depths: [1, 64], impls: ['fs.promises', 'fs.read'] },
  seqread: { depths: [4, 1], impls: ['fs.promises', 'fs.read', 'fs.createReadStream'] },
  'randread-4k-direct': { depths: [64], impls: ['fs.promises', 'fs.read'] },
};

function ioUringFds() {
  let n = 0;
  for (const f of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${f}`).includes('io_uring')) n++;
    } catch {
      // closed meanwhile (the directory's own descriptor)
    }
  }
  return n;
}

// Child side: says whether libuv really set up io_uring (libuv falls back to
// its thread pool silently when the kernel refuses), then runs cells on request.
async function childMain() {
  await new Promise((resolve) => fs.read(fs.openSync(file, 'r'), Buffer.alloc(BS), 0, BS, 0, resolve));
  let reason;
  if (process.env.UV_USE_IO_URING !== '1') reason = 'UV_USE_IO_URING is not 1 in the child';
  else if (ioUringFds() === 0) {
    let sysctl = '';
    try {
      sysctl = `, kernel.io_uring_disabled=${fs.readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim()}`;
    } catch {
      // older kernels have no such switch
    }
    reason = `libuv did not set up io_uring (kernel ${os.release()}${sysctl}; libuv needs Linux >= 5.10.186 and io_uring allowed)`;
  }
  process.send({ type: 'ready', ok: reason === undefined, reason });
  const builders = {
    'randread-4k': () => randreadCells('warm', true),
    'randread-4k-direct': () => randreadCells('direct', true),
    seqread: () => seqreadCells(true),
  };
  const groups = new Map();
  process.on('message', async (m) => {
    try {
      if (m.type === 'close') {
        for (const g of groups.values()) await g.close();
        process.disconnect();
        return;
      }
      if (!groups.has(m.workload)) groups.set(m.workload, await builders[m.workload]());
      const cell = groups.get(m.workload).cells.find((c) => c.impl === m.impl && c.qd === m.qd);
      if (cell === undefined) throw new Error(`no cell ${m.workload} ${m.impl} qd=${m.qd} in the child`);
      process.send({ type: 'result', ...(await measure(cell, m.seconds)) });
    } catch (e) {
      process.send({ type: 'error', message: e?.stack ?? String(e) });
    }
  });
}

async function startIoUringChild() {
  if (args['no-io-uring']) return { reason: 'skipped by --no-io-uring' };
  const cp = fork(fileURLToPath(import.meta.url), ['--child-file', file, '--size', String(sizeMiB)], {
    env: { ...process.env, UV_USE_IO_URING: '1' },
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = () =>
    new Promise((resolve, reject) => {
      const onMessage = (m) => {
        cp.off('exit', onExit);
        resolve(m);
      };
      const onExit = (code) => {
        cp.off('message', onMessage);
        reject(new Error(`io_uring child exited (${code})`));
      };
      cp.once('message', onMessage);
      cp.once('exit', onExit);
    });
  const ready = await next();
  if (!ready.ok) {
    cp.kill();
    return { reason: ready.reason };
  }
  return {
    async run(workload, impl, qd, seconds) {
      cp.send({ type: 'run', workload, impl, qd, seconds });
      const m = await next();
      if (m.type === 'error') throw new Error(`io_uring child: ${m.message}`);
      return m;
    },
    async close() {
      cp.send({ type: 'close' });
      await new Promise((resolve) => cp.once('exit', resolve));
    },
  };
}

// Adds the io_uring cells to a group, right after the same implementation
// without io_uring, so they interleave with everything else.
function addIoUringCells(workload, g, uring) {
  const peers = IO_URING_PEERS[workload];
  if (peers === undefined || uring.run === undefined) return;
  const cells = [];
  for (const cell of g.cells) {
    cells.push(cell);
    if (peers.impls.includes(cell.impl) && peers.depths.includes(cell.qd)) {
      cells.push({
        impl: `${cell.impl}+io_uring`,
        qd: cell.qd,
        remote: () => uring.run(workload, cell.impl, cell.qd, cellSeconds),
      });
    }
  }
  g.cells = cells;
}

async function main() {
  const started = Date.now();
  const info = machine();
  makeFile();
  progress('warming the page cache');
  warmCache();
  // Memory first, before other workloads leave garbage that skews RSS.
  let memory;
  if (wanted('memory')) memory = await memoryCheck();
  const skipped = {};
  const needsUring = Object.keys(IO_URING_PEERS).some(wanted);
  const uring = needsUring ? await startIoUringChild() : {};
  if (uring.reason !== undefined) skipped['io_uring peers'] = uring.reason;
  const groups = [];
  if (wanted('randread-4k')) groups.push(['randread-4k', await randreadCells('warm'), BS]);
  if (wanted('seqread')) {
    const g = await seqreadCells();
    groups.push(['seqread', g, g.bytesPerOp]);
  }
  if (wanted('randwrite-4k')) groups.push(['randwrite-4k', await randwriteCells(), BS]);
  if (wanted('randread-4k-direct')) {
    const why = directSupported();
    if (why === undefined) groups.push(['randread-4k-direct', await randreadCells('direct'), BS]);
    else skipped['randread-4k-direct'] = why;
  }
  // Last: it leaves the file's pages dropped.
  if (wanted('randread-4k-cold')) groups.push(['randread-4k-cold', await randreadCells('cold'), BS]);
  for (const [workload, g] of groups) addIoUringCells(workload, g, uring);
  if (nowaitIntegrated === false && groups.some(([w]) => w === 'randread-4k' || w === 'randread-4k-cold')) {
    skipped['posix-aio nowait'] =
      'AioFile has no page-cache fast path in this build yet: posix-aio and posix-aio-aio both read through AIO; posix-aio-nowait-preview is src/api/nowait.ts over AioCb (not in the targets)';
  }

  const totalCells = groups.reduce((n, [, g]) => n + g.cells.length, 0) * runs;
  let doneCells = 0;
  const samples = new Map();
  for (const [workload, g, bytes] of groups) {
    for (let r = 0; r < runs; r++) {
      // Interleaved: every implementation once per run.
      for (const cell of g.cells) {
        progress(`[${++doneCells}/${totalCells}] ${workload} ${cell.impl} qd=${cell.qd} run ${r + 1}/${runs}`);
        // The child drops nothing itself: the page cache is shared, so the
        // parent drops it for remote cells too.
        if (cell.remote !== undefined && workload === 'randread-4k-cold') dropCache();
        const m = cell.remote !== undefined ? await cell.remote() : await measure(cell, cellSeconds);
        const key = `${workload}\u0000${cell.impl}\u0000${cell.qd}`;
        if (!samples.has(key)) samples.set(key, { workload, impl: cell.impl, qd: cell.qd, bytes, runs: [] });
        samples.get(key).runs.push(m);
      }
    }
    await g.close();
  }
  await uring.close?.();

  const round = (x, d = 10) => (x === undefined ? undefined : Math.round(x * d) / d);
  const rows = [...samples.values()].map((s) => {
    const ops = median(s.runs.map((x) => x.opsPerSec));
    const loops = s.runs.map((x) => x.loopP99Ms).filter((x) => x !== undefined);
    return {
      workload: s.workload,
      impl: s.impl,
      qd: s.qd,
      opsPerSec: Math.round(ops),
      mbPerSec: round((ops * s.bytes) / 1e6),
      p50Us: round(median(s.runs.map((x) => x.p50Us))),
      p99Us: round(median(s.runs.map((x) => x.p99Us))),
      loopP99Ms: loops.length > 0 ? round(median(loops), 100) : undefined,
    };
  });

  progress('');
  if (tty) process.stderr.write('\r\x1b[2K');

  printTable(rows, info, skipped, memory);
  const targets = checkTargets(rows, memory, skipped);
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
  // The chart goes next to the JSON (bench/results/latest.svg by default).
  const svgPath = jsonPath.replace(/(\.json)?$/, '.svg');
  fs.writeFileSync(svgPath, renderSvg(rows, info));
  console.log(
    `\nwrote ${path.relative(process.cwd(), jsonPath)} and ${path.relative(process.cwd(), svgPath)} in ${result.seconds}s`,
  );
}

function ratioTo(rows, row, impl) {
  // seqread: one pass is one operation whatever the depth, so depths compare.
  const base = rows.find(
    (r) => r.workload === row.workload && (r.qd === row.qd || row.workload === 'seqread') && r.impl === impl,
  );
  return base ? row.opsPerSec / base.opsPerSec : undefined;
}

function printTable(rows, info, skipped, memory) {
  console.log(
    `posix-aio benchmark: ${info.cpus} CPUs (${info.cpuModel}), Node ${info.node}, libuv ${info.libuv}, ${info.glibc}`,
  );
  console.log(
    `UV_THREADPOOL_SIZE=${info.UV_THREADPOOL_SIZE} UV_USE_IO_URING=${info.UV_USE_IO_URING}; ${sizeMiB} MiB file, ${runs} runs of ${cellSeconds}s, medians\n`,
  );
  const head = ['workload', 'impl', 'qd', 'ops/s', 'MB/s', 'p50 us', 'p99 us', 'loop p99 ms', 'vs fs.promises'];
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
      r.loopP99Ms === undefined ? '' : r.loopP99Ms.toFixed(2),
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

// The targets of issue 11, each a ratio of medians from this run (or a
// maximum); bench/README.md explains each and what limits the ones not met.
function checkTargets(rows, memory, skipped) {
  const get = (w, impl, qd) =>
    rows.find((r) => r.workload === w && r.impl === impl && (qd === undefined || r.qd === qd))?.opsPerSec;
  const t = [];
  const ratio = (name, w, qd, a, b, min) => {
    const x = get(w, a, qd);
    const y = get(w, b, qd);
    if (x === undefined || y === undefined) {
      const ran = rows.some((r) => r.workload === w);
      const why = ran && b.endsWith('+io_uring') ? skipped['io_uring peers'] : undefined;
      t.push({ target: name, min, ok: undefined, note: why ?? 'not measured in this run' });
      return;
    }
    t.push({ target: name, ratio: Math.round((x / y) * 100) / 100, min, ok: x / y >= min });
  };
  ratio('randread-4k qd1: posix-aio / fs.promises', 'randread-4k', 1, 'posix-aio', 'fs.promises', 5);
  ratio('randread-4k qd1: posix-aio / fs.promises+io_uring', 'randread-4k', 1, 'posix-aio', 'fs.promises+io_uring', 2);
  ratio('randread-4k qd64: posix-aio / fs.read', 'randread-4k', 64, 'posix-aio', 'fs.read', 1.5);
  ratio('randread-4k qd64: posix-aio / fs.read+io_uring', 'randread-4k', 64, 'posix-aio', 'fs.read+io_uring', 1.0);
  ratio('randread-4k qd64: posix-aio-batch / fs.read', 'randread-4k', 64, 'posix-aio-batch', 'fs.read', 1.5);
  ratio('seqread: posix-aio / fs.createReadStream', 'seqread', undefined, 'posix-aio', 'fs.createReadStream', 1.5);
  ratio('randread-4k-cold qd64: posix-aio / fs.promises', 'randread-4k-cold', 64, 'posix-aio', 'fs.promises', 1.0);
  ratio('randread-4k-cold qd1: posix-aio nowait on / off', 'randread-4k-cold', 1, 'posix-aio', 'posix-aio-aio', 0.9);
  ratio('randread-4k-cold qd64: posix-aio nowait on / off', 'randread-4k-cold', 64, 'posix-aio', 'posix-aio-aio', 0.9);
  ratio('randwrite-4k qd64: posix-aio / fs.promises', 'randwrite-4k', 64, 'posix-aio', 'fs.promises', 1.5);
  ratio(
    'randread-4k-direct qd64: posix-aio / fs.read+io_uring',
    'randread-4k-direct',
    64,
    'posix-aio',
    'fs.read+io_uring',
    0.9,
  );
  const loops = rows.filter((r) => r.impl.startsWith('posix-aio') && r.loopP99Ms !== undefined);
  if (loops.length > 0) {
    const worst = loops.reduce((a, b) => (b.loopP99Ms > a.loopP99Ms ? b : a));
    t.push({
      target: `event-loop delay p99, worst posix-aio cell (${worst.workload} ${worst.impl} qd${worst.qd}) (ms)`,
      value: worst.loopP99Ms,
      max: 2,
      ok: worst.loopP99Ms <= 2,
    });
  }
  if (memory !== undefined) {
    t.push({
      target: 'memory: RSS growth outside the JavaScript heap, 100k -> 1M operations (MiB)',
      value: Math.round(memory.growthOutsideHeapMiB * 10) / 10,
      max: 4,
      strict: true,
      ok: memory.growthOutsideHeapMiB < 4,
    });
  }
  return t;
}

function printTargets(targets) {
  if (targets.length === 0) return;
  console.log('\ntargets (issue 11):');
  for (const t of targets) {
    let v;
    if (t.ok === undefined) v = `not measured: ${t.note} (need >= ${t.min}x)`;
    else if (t.ratio !== undefined) v = `${t.ratio.toFixed(2)}x (need >= ${t.min}x)`;
    else v = `${t.value} (need ${t.strict ? '<' : '<='} ${t.max})`;
    console.log(`  ${t.ok === undefined ? 'n/a    ' : t.ok ? 'met    ' : 'NOT MET'}  ${t.target}: ${v}`);
  }
}

if (child) {
  await childMain();
} else {
  try {
    await main();
  } finally {
    cleanup();
  }
}
