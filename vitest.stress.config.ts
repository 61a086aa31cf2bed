import { defineConfig } from 'vitest/config';

// Slow reliability tests (npm run test:stress): lifecycle, faults and the
// model-based property test. Kept out of the default run by vitest.config.ts.
export default defineConfig({
  test: {
    include: ['test/stress/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 180_000,
    hookTimeout: 60_000,
  },
});
