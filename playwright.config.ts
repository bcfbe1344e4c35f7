import { defineConfig, devices } from '@playwright/test';

const port = Number(process.env.E2E_PORT ?? 3107);
// Loopback only: the console is not meant to be reachable from the network during tests.
const baseURL = `http://127.0.0.1:${port}`;
const isCI = !!process.env.CI;
// The production build is what ships and what CI checks; E2E_DEV=1 swaps in `next dev` for a
// faster edit-test loop locally.
const useDevServer = process.env.E2E_DEV === '1' && !isCI;

export default defineConfig({
  testDir: 'e2e',
  outputDir: 'test-results',
  forbidOnly: isCI,
  retries: isCI ? 2 : 0,
  // Two cores, and the server under test needs one of them.
  workers: isCI ? 1 : 2,
  reporter: 'list',
  use: {
    baseURL,
    trace: 'retain-on-failure',
    launchOptions: {
      // Browsers cannot be downloaded here; use the distribution's Chromium.
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-gpu',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
  projects: [{ name: 'chromium', use: { ...devices['Desktop Chrome'] } }],
  webServer: {
    command: useDevServer
      ? `npm run dev -- -H 127.0.0.1 -p ${port}`
      : `npx tsx test/console/ensure-build.ts && npm run start -- -H 127.0.0.1 -p ${port}`,
    // The health route is the one anonymous route, so it works before anyone logs in.
    url: `${baseURL}/api/health`,
    reuseExistingServer: !isCI,
    // A production build on a two-core machine takes a few minutes.
    timeout: 300_000,
    stdout: 'pipe',
    stderr: 'pipe',
    env: {
      NEXT_TELEMETRY_DISABLED: '1',
    },
  },
});
