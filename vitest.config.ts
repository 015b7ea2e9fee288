import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'] },
      },
      {
        // Real gateway and runner processes: slow to start, and they share the machine's two
        // cores, so the files run one at a time.
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
          // What a page or a server shows after a call can take seconds while pytest shares the
          // cores (test.sh runs both suites side by side); expect.poll's own 1 s was too short.
          expect: { poll: { timeout: 15_000 } },
        },
      },
    ],
  },
});
