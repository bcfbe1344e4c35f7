import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'lib/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // Two cores: more parallel files than that only adds timing noise to lock tests.
    maxWorkers: 2,
  },
  resolve: {
    alias: {
      '@': new URL('.', import.meta.url).pathname,
      // lib/console modules start with `import 'server-only'`, which throws outside a React
      // server bundle; under vitest they are plain server code.
      'server-only': new URL('./node_modules/server-only/empty.js', import.meta.url).pathname,
    },
  },
});
