/**
 * The event stream survives a console restart: the page says it is reconnecting while the server
 * is away, is live again once it is back (a fresh snapshot), and shows locks taken after the
 * restart. This test owns its console process (same SQLite store as the shared one).
 */
import { expect, lockRow, screenshotPath, test, waitLive } from './fixtures';
import { startE2EConsole } from './support/console';
import { consoleEnv, e2eEnv } from './support/env';

test('the page reconnects after the console server restarts and keeps showing new locks', async ({ page, local, ns }) => {
  test.setTimeout(120_000);
  const env = e2eEnv();
  const server = await startE2EConsole({
    config: { backends: [{ id: 'local', type: 'sqlite', path: env.sqlitePath }] },
    env: consoleEnv(env.operatorToken, env.viewerToken, env.sessionSecret),
  });
  try {
    const res = await page.context().request.post(`${server.url}/api/login`, { data: { token: env.operatorToken }, headers: { origin: server.url } });
    expect(res.status()).toBe(200);
    await page.goto(`${server.url}/locks?q=${ns}`);
    await waitLive(page);

    const before = `${ns}/before-restart`;
    const h1 = await local.tryAcquire(before, { ttlMs: 120_000, autoRenew: false, owner: 'worker-1' });
    await expect(lockRow(page, 'local', before)).toBeVisible({ timeout: 2000 });

    const down = Date.now();
    await server.kill();
    await expect(page.locator('header [data-sync-state]')).toHaveAttribute('data-sync-state', 'reconnecting', { timeout: 10_000 });
    await expect(page.getByText('Live updates are paused')).toBeVisible();
    // What was there stays on screen, marked as possibly out of date.
    await expect(lockRow(page, 'local', before)).toBeVisible();
    await page.screenshot({ path: screenshotPath('reconnecting') });

    await server.start();
    const up = Date.now();
    await waitLive(page);
    const liveAgain = Date.now();
    await expect(page.getByText('Live updates are paused')).toBeHidden();

    const after = `${ns}/after-restart`;
    const t0 = Date.now();
    const h2 = await local.tryAcquire(after, { ttlMs: 120_000, autoRenew: false, owner: 'worker-2' });
    await expect(lockRow(page, 'local', after)).toBeVisible({ timeout: 2000 });
    const timing = `server away ${up - down} ms; live again ${liveAgain - up} ms after it answered; new lock shown ${Date.now() - t0} ms after acquire`;
    test.info().annotations.push({ type: 'timing', description: timing });
    process.stderr.write(`[e2e reconnect] ${timing}\n`);
    await h1?.release();
    await h2?.release();
  } finally {
    await server.stop();
  }
});
