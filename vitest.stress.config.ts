import { defineConfig } from 'vitest/config';

// Slow reliability tests (npm run test:stress): lifecycle, faults and the
// model-based property test. Kept out of the default run by vitest.config.ts.
export default defineConfig({
  test: {
    include: ['test/stress/**/*.test.ts'],
    pool: 'forks',
    // One file at a time: linear.test.ts measures how long the event loop is
    // blocked, and the other files (40 Workers, fuzzing) would add their own
    // load to that wall time on a 2-core machine.
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 60_000,
  },
});
