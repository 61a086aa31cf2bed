// Child processes for the engine tests (issue 9): every child runs with a
// timeout and is killed with SIGKILL when it overruns, and a failure shows
// what the child printed. A child's stderr must not hold a Node warning
// (`Warning:`, e.g. MaxListenersExceededWarning), an unhandled rejection or
// a native crash; expectClean() checks all of it.
//
// Children inherit the environment, so under test/asan/run.sh they run with
// the sanitizer runtimes preloaded (LD_PRELOAD, ASAN_OPTIONS, UBSAN_OPTIONS)
// and an ASan report fails the test.
import { spawnSync } from 'node:child_process';
import { expect } from 'vitest';

export interface ChildRun {
  /** What ran, for messages. */
  readonly what: string;
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** True when the child was killed for overrunning its timeout. */
  readonly timedOut: boolean;
  readonly ms: number;
}

export interface ChildOptions {
  /** Killed (SIGKILL) after this long. */
  readonly timeoutMs: number;
  /** Added to the inherited environment. */
  readonly env?: Record<string, string>;
  /** Node options before the script, e.g. --expose-gc. */
  readonly nodeArgs?: readonly string[];
  /** `ulimit -n` for the child (runs it through bash). */
  readonly fdLimit?: number;
}

export const NATIVE_CRASH =
  /Assertion|Aborted|Segmentation fault|terminate called|FATAL ERROR|Sanitizer|runtime error:|core dumped/;
const WARNING = /Warning:/;
const UNHANDLED = /unhandled ?rejection|UnhandledPromiseRejection/i;

// Preloaded into every child: an unhandled rejection is reported on stderr
// (which expectQuietStderr refuses) and makes the exit status 70, whatever the
// test expects otherwise; without it, Node prints only the error.
const REJECTION_HOOK =
  "--import=data:text/javascript,process.on('unhandledRejection',(e)=>{" +
  "process.stderr.write('unhandledRejection: '+String((e&&e.stack)||e)+'\\n');process.exitCode=70})";

/** Runs `node [nodeArgs] file ...args`. */
export function runNode(file: string, args: readonly string[], opts: ChildOptions): ChildRun {
  return run([REJECTION_HOOK, ...(opts.nodeArgs ?? []), file, ...args], opts, `node ${file} ${args.join(' ')}`);
}

/**
 * Runs `body` as an ES module with `m` = the package at `entry`, `fs`,
 * `path`, `execFileSync` and `Worker` in scope.
 */
export function runModule(entry: string, body: string, opts: ChildOptions): ChildRun {
  const script = `
    import fs from 'node:fs';
    import path from 'node:path';
    import { execFileSync } from 'node:child_process';
    import { Worker } from 'node:worker_threads';
    const m = await import(${JSON.stringify(entry)});
    ${body}
  `;
  return run(
    [REJECTION_HOOK, ...(opts.nodeArgs ?? []), '--input-type=module', '-e', script],
    opts,
    `node -e <script>\n${body}`,
  );
}

function run(nodeArgv: string[], opts: ChildOptions, what: string): ChildRun {
  const start = Date.now();
  const env = { ...process.env, ...(opts.env ?? {}) };
  const r =
    opts.fdLimit === undefined
      ? spawnSync(process.execPath, nodeArgv, {
          encoding: 'utf8',
          timeout: opts.timeoutMs,
          killSignal: 'SIGKILL',
          env,
          maxBuffer: 64 << 20,
        })
      : spawnSync('bash', ['-c', `ulimit -n ${opts.fdLimit} && exec "$0" "$@"`, process.execPath, ...nodeArgv], {
          encoding: 'utf8',
          timeout: opts.timeoutMs,
          killSignal: 'SIGKILL',
          env,
          maxBuffer: 64 << 20,
        });
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  if (r.error !== undefined && !timedOut) throw r.error;
  return {
    what,
    status: r.status,
    signal: r.signal,
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? '',
    timedOut,
    ms: Date.now() - start,
  };
}

/** Everything about a run, for a failure message. */
export function detail(r: ChildRun): string {
  const tail = (s: string) => (s.length > 6000 ? `...${s.slice(-6000)}` : s);
  return (
    `${r.what.slice(0, 400)}\n` +
    `status ${r.status}, signal ${(r.signal as string | null) === '' ? '(unnamed: a real-time signal)' : r.signal}, ${r.timedOut ? 'KILLED AFTER TIMEOUT, ' : ''}${r.ms} ms\n` +
    `stdout:\n${tail(r.stdout)}\nstderr:\n${tail(r.stderr)}`
  );
}

/** No warning, no unhandled rejection, no native crash on stderr. */
export function expectQuietStderr(r: ChildRun): void {
  expect(r.stderr, `a warning in the child's stderr\n${detail(r)}`).not.toMatch(WARNING);
  expect(r.stderr, `an unhandled rejection in the child\n${detail(r)}`).not.toMatch(UNHANDLED);
  expect(r.stderr, `a native crash in the child\n${detail(r)}`).not.toMatch(NATIVE_CRASH);
}

/** Finished in time, by itself, with `status` and a quiet stderr. */
export function expectClean(r: ChildRun, status = 0): void {
  expect(r.timedOut, `the child did not finish in time\n${detail(r)}`).toBe(false);
  expect({ signal: r.signal, status: r.status }, detail(r)).toEqual({ signal: null, status });
  expectQuietStderr(r);
}

/** The last line of stdout that parses as JSON (the child's result). */
export function lastJson<T>(r: ChildRun): T {
  const lines = r.stdout.trim().split('\n').reverse();
  for (const line of lines) {
    if (!line.startsWith('{') && !line.startsWith('[')) continue;
    try {
      return JSON.parse(line) as T;
    } catch {
      // a progress line cut short
    }
  }
  throw new Error(`no JSON result in the child's stdout\n${detail(r)}`);
}
