import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/stress/**', 'node_modules/**'],
    pool: 'forks',
    setupFiles: ['test/setup/warnings.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
