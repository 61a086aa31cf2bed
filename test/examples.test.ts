// Runs every script in examples/ as a user would (node examples/x.mjs ...),
// against dist/, so that they never rot.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = promisify(execFile);

/** Newest modification time of any file under `dir`. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    newest = Math.max(newest, fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

function example(name: string, args: string[] = []): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [path.join(root, 'examples', name), ...args], { cwd: root, timeout: 30_000 });
}

let tmp: string;

beforeAll(() => {
  const built = path.join(root, 'dist', 'index.js');
  if (!fs.existsSync(built) || fs.statSync(built).mtimeMs < newestMtime(path.join(root, 'src'))) {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'posix-aio-examples-'));
  return () => fs.rmSync(tmp, { recursive: true, force: true });
}, 120_000);

describe('examples', () => {
  it('copy-file.mjs copies every byte with readChunks and writeChunks', async () => {
    // Several chunks of 1 MiB plus a short tail.
    const data = randomBytes(3 * (1 << 20) + 12345);
    const src = path.join(tmp, 'src.bin');
    const dst = path.join(tmp, 'dst.bin');
    fs.writeFileSync(src, data);
    fs.writeFileSync(dst, 'stale contents that the copy must replace');

    const { stdout, stderr } = await example('copy-file.mjs', [src, dst]);
    expect(stderr).toBe('');
    expect(stdout).toMatch(
      new RegExp(`^copied ${data.length} bytes from .*src\\.bin to .*dst\\.bin in [\\d.]+ ms\\n$`),
    );
    expect(fs.readFileSync(dst).equals(data)).toBe(true);
  });

  it('copy-file.mjs copies an empty file', async () => {
    const src = path.join(tmp, 'empty.bin');
    const dst = path.join(tmp, 'empty-copy.bin');
    fs.writeFileSync(src, '');
    const { stdout } = await example('copy-file.mjs', [src, dst]);
    expect(stdout).toMatch(/^copied 0 bytes /);
    expect(fs.readFileSync(dst)).toHaveLength(0);
  });

  it('copy-file.mjs fails like fs for a missing source', async () => {
    const err = await example('copy-file.mjs', [path.join(tmp, 'missing'), path.join(tmp, 'out')]).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(1);
    expect(err?.stderr).toMatch(/ENOENT/);
  });

  it('copy-file.mjs prints its usage without arguments', async () => {
    const err = await example('copy-file.mjs').then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toMatch(/^usage: node examples\/copy-file\.mjs <src> <dst>/);
  });

  it('random-reader.mjs reads in batches, reports ops/s and verifies every read', async () => {
    const file = path.join(tmp, 'random.bin');
    // Not a multiple of the block size: the last partial block is never read.
    fs.writeFileSync(file, randomBytes((1 << 20) + 100));
    const { stdout, stderr } = await example('random-reader.mjs', [file, '--reads', '3000', '--batch', '32']);
    expect(stderr).toBe('');
    const lines = stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    const m = /^random-reader: 3000 reads of 4096 B in batches of 32 from .*: (\d+) ops\/s, ([\d.]+) MiB\/s$/.exec(
      lines[0] ?? '',
    );
    expect(m, lines[0]).not.toBeNull();
    expect(Number(m?.[1])).toBeGreaterThan(0);
    expect(lines[1]).toBe('verified 3000 reads against fs.readSync: 0 mismatches');
  });

  it('random-reader.mjs handles a file smaller than one block', async () => {
    const file = path.join(tmp, 'small.bin');
    fs.writeFileSync(file, 'tiny');
    const { stdout } = await example('random-reader.mjs', [file, '--reads', '10']);
    expect(stdout).toMatch(/^random-reader: 10 reads of 4 B in batches of 64 /);
    expect(stdout).toMatch(/verified 10 reads against fs.readSync: 0 mismatches\n$/);
  });

  it('timeout.mjs cancels a queued read with AbortSignal.timeout and AbortSignal.any', async () => {
    const { stdout, stderr } = await example('timeout.mjs');
    expect(stderr).toBe('');
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('first read: blocked in libc on the empty FIFO');
    const m =
      /^second read: rejected after (\d+) ms with AbortError \(code ABORT_ERR\), cause TimeoutError: The operation was aborted due to timeout$/.exec(
        lines[1] ?? '',
      );
    expect(m, lines[1]).not.toBeNull();
    // AbortSignal.timeout(100): never early; a loaded machine may be late.
    expect(Number(m?.[1])).toBeGreaterThanOrEqual(90);
    expect(lines[2]).toBe('third read: rejected with AbortError (code ABORT_ERR), cause Error: cancelled by the user');
    expect(lines[3]).toBe('first read: returned 1 byte(s): "A"');
    expect(lines).toHaveLength(4);
  });
});
