/**
 * The lock list is live: locks taken and released through lib/ (as applications do) appear and
 * disappear in an open page within a second, TTLs count down by the server's clock, and a foreign
 * layout written with plain Redis commands (ShedLock) shows its owner.
 */
import { expect, lockRow, screenshotPath, test, waitLive } from './fixtures';

const ttlOf = async (row: ReturnType<typeof lockRow>) => Number(await row.locator('[data-ttl-ms]').getAttribute('data-ttl-ms'));

test('a lock taken through lib appears within a second, its TTL counts down by the server clock, and it leaves when released', async ({ page, login, local, ns }) => {
  // This browser's clock runs two hours fast: TTLs must still come from the server's clock.
  await page.addInitScript(() => {
    const real = Date.now.bind(Date);
    Date.now = () => real() + 2 * 3600_000;
  });
  await login();
  await page.goto(`/locks?q=${ns}`);
  await waitLive(page);
  await expect(page.getByText('No locks match these filters')).toBeVisible();

  const key = `${ns}/billing:invoice-42`;
  const t0 = Date.now();
  const h = await local.tryAcquire(key, { ttlMs: 60_000, autoRenew: false, owner: 'worker-a' });
  expect(h).not.toBeNull();
  const row = lockRow(page, 'local', key);
  await expect(row).toBeVisible({ timeout: 1000 });
  const appearedMs = Date.now() - t0;
  await expect(row).toContainText('worker-a');
  await expect(row).toContainText(h!.fence);
  await expect(row).toContainText('OK');

  const ttl1 = await ttlOf(row);
  expect(ttl1).toBeGreaterThan(50_000);
  // At most the lease plus the time the server's clock reading took to arrive (a few ms).
  expect(ttl1).toBeLessThanOrEqual(60_500);
  await page.waitForTimeout(2200);
  const ttl2 = await ttlOf(row);
  // Counted down by about the time that passed, not frozen, not jumped by the skewed clock.
  expect(ttl1 - ttl2).toBeGreaterThanOrEqual(1000);
  expect(ttl1 - ttl2).toBeLessThan(4000);
  await expect(row.locator('[data-col="ttl"]')).toHaveText(/^\d+s$/);

  const t1 = Date.now();
  await h!.release();
  await expect(row).toHaveCount(0, { timeout: 1000 });
  const goneMs = Date.now() - t1;
  const timing = `appeared ${appearedMs} ms after acquire, gone ${goneMs} ms after release`;
  test.info().annotations.push({ type: 'timing', description: timing });
  process.stderr.write(`[e2e live] ${timing}\n`);
});

test('a ShedLock lock written by a Java client shows its owner and can be released by the value it had', async ({ page, login, redis, ns }) => {
  const key = `job-lock:default:${ns}-nightly-report`;
  await redis.set(key, `ADDED:${new Date().toISOString()}@host-1`, 'PX', 120_000);
  await login();
  await page.goto(`/locks?q=${ns}`);
  const row = lockRow(page, 'cache', key);
  // Foreign layouts have no change feed: the console's re-list finds them (every 500 ms here).
  await expect(row).toBeVisible({ timeout: 5000 });
  await expect(row).toContainText('host-1');
  await expect(row).toContainText('shedlock');

  await row.getByRole('link', { name: key }).click();
  await expect(page).toHaveURL(/\/lock\?backend=cache&key=job-lock%3Adefault%3A/);
  await expect(page.getByTestId('lock-title')).toHaveText(key);
  await expect(page.getByTestId('holder-owner')).toHaveText('host-1');
  // The stored value's hash, shown short: it tells holders apart and pins the release.
  const hash = page.getByTestId('meta').locator('dd').filter({ hasText: /^[0-9a-f]{8}$/ });
  await expect(hash).toHaveCount(1);

  await page.getByRole('button', { name: 'Force-release…' }).click();
  const dialog = page.getByRole('alertdialog');
  await expect(dialog.getByTestId('release-caveats')).toContainText('shedlock lock written by another client library');
  await dialog.getByLabel(/Reason/).fill(`e2e ${ns}: host-1 was decommissioned`);
  await dialog.getByRole('button', { name: 'Force-release' }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByTestId('not-held')).toBeVisible();
  expect(await redis.exists(key)).toBe(0);
});
