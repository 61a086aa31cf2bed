// Every test file runs with this: a process warning (MaxListenersExceeded,
// a descriptor closed on garbage collection, a deprecation...) fails the test
// during which it was emitted. Tests that expect a warning run the code in a
// child process and check its stderr.
import { afterEach, expect } from 'vitest';

const seen: Error[] = [];
process.on('warning', (w) => {
  seen.push(w);
});

afterEach(async () => {
  // Warnings are emitted on the next tick.
  await new Promise((resolve) => setImmediate(resolve));
  const warnings = seen.splice(0).map((w) => `${w.name}: ${w.message}`);
  expect(warnings, 'unexpected process warnings').toEqual([]);
});
