import { defineConfig } from 'vitest/config';

// Tests mount real FUSE filesystems and start real daemons: run files one at a time (2 cores).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 60_000,
    globalSetup: ['test/helpers/global-setup.ts'],
    reporters: ['default'],
  },
});
