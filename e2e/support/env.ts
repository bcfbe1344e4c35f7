/** The port of the shared console server (playwright.config.ts baseURL, global-setup.ts). */
export const E2E_PORT = Number(process.env.E2E_PORT ?? 3107);

/** What global-setup.ts hands the tests, read when a test asks (workers inherit the variables). */
export function e2eEnv() {
  const need = (name: string): string => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set: run the browser tests through playwright.config.ts (its globalSetup starts the servers)`);
    return v;
  };
  return {
    baseURL: need('E2E_BASE_URL'),
    redisUrl: need('E2E_REDIS_URL'),
    sqlitePath: need('E2E_SQLITE_PATH'),
    operatorToken: need('E2E_OPERATOR_TOKEN'),
    viewerToken: need('E2E_VIEWER_TOKEN'),
    sessionSecret: need('E2E_SESSION_SECRET'),
    dir: need('E2E_DIR'),
  };
}

/** Console settings every e2e server uses (the reconnect and scale tests start their own). */
export function consoleEnv(operator: string, viewer: string, secret: string): Record<string, string> {
  return {
    LOCKDECK_OPERATOR_TOKEN: operator,
    LOCKDECK_VIEWER_TOKEN: viewer,
    // Fixed, so a restarted server still accepts the browser's login cookie.
    LOCKDECK_SESSION_SECRET: secret,
    LOCKDECK_RELEASE_RATE_LIMIT: '1000',
    // Foreign locks have no change feed: the console finds them by re-listing; fast for tests.
    LOCKDECK_RECONCILE_INTERVAL_MS: '500',
    LOCKDECK_HEALTH_INTERVAL_MS: '2000',
  };
}
