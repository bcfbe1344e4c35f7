import { defineConfig, devices } from '@playwright/test';

import { E2E_PORT } from './e2e/support/env';

// Loopback only: the console is not meant to be reachable from the network during tests.
const baseURL = `http://127.0.0.1:${E2E_PORT}`;
const isCI = !!process.env.CI;

/**
 * The browser tests run against real servers that e2e/global-setup.ts starts once per run: a
 * redis-server, the embedded SQLite store and the console's production build (`next start`,
 * built at most once, shared with the console HTTP tests through test/console/ensure-build.ts).
 * Tests that must own their server (restart, 10,000 locks) start another one themselves.
 */
export default defineConfig({
  testDir: 'e2e',
  outputDir: 'test-results',
  forbidOnly: isCI,
  retries: isCI ? 1 : 0,
  // One worker: the machine has two cores, one for the console server and one for the browser;
  // the tests assert on timing (a lock appears within a second), which parallel workers would
  // only make noisier. The whole suite takes about two minutes.
  workers: 1,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: 'list',
  globalSetup: './e2e/global-setup.ts',
  use: {
    baseURL,
    trace: 'retain-on-failure',
    viewport: { width: 1440, height: 900 },
    launchOptions: {
      // Browsers cannot be downloaded here; use the distribution's Chromium.
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu', '--disable-component-update', '--disable-sync', '--no-first-run'],
    },
  },
  projects: [{ name: 'chromium', use: { ...devices['Desktop Chrome'], viewport: { width: 1440, height: 900 } } }],
});
