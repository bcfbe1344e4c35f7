/**
 * A realistic fleet (our own locks on SQLite and Redis, a contended lock with a queue, foreign
 * ShedLock locks, one without expiry), seeded through lib/ and plain Redis commands, then every
 * page checked and photographed in both themes for docs/screenshots.
 */
import type { LockHandle } from '../lib/locks/types';
import { expect, lockRow, screenshotPath, test, waitLive } from './fixtures';
import { e2eEnv } from './support/env';

test('a realistic fleet: overview, lock list and lock page, light and dark', async ({ page, login, local, cache, openLocal, redis, ns }) => {
  const held: LockHandle[] = [];
  const take = async (b: typeof local, key: string, owner: string, ttlMs: number, labels?: Record<string, string>) => {
    const h = await b.tryAcquire(key, { ttlMs, owner, labels, autoRenew: true });
    if (!h) throw new Error(`${key} is held`);
    held.push(h);
    return h;
  };
  // A short prefix for readable keys in the pictures; still unique to this run.
  const p = `acme-${ns.slice(-6)}`;
  const contended = `${p}/payments:settlement`;
  await take(local, contended, 'settle-worker-2.prod', 90_000, { job: 'nightly-settlement', run: 'https://ci.example.test/runs/88121' });
  for (const [i, owner] of ['settle-worker-5.prod', 'settle-worker-1.prod', 'settle-worker-8.prod'].entries()) {
    await new Promise((r) => setTimeout(r, 150 * i));
    openLocal().acquire(contended, { waitMs: 120_000, ttlMs: 30_000, owner }).catch(() => undefined);
  }
  const report = await take(local, `${p}/reports:daily-revenue`, 'reports-1.prod', 300_000);
  await take(local, `${p}/search/reindex:products`, 'indexer-3.prod', 45_000);
  await take(local, `${p}/billing:invoice-run-2026-11`, 'billing-cron.prod', 600_000);
  await take(cache, `${p}:orders:shard-17`, 'orders-api-4.prod', 20_000);
  const sync = await take(cache, `${p}:inventory:sync`, 'inventory-sync-1.prod', 60_000);
  // Foreign layouts: a ShedLock job lock, and one written without PX (no expiry: orphaned).
  await redis.set(`job-lock:default:${p}-cleanup`, `ADDED:${new Date(Date.now() - 95_000).toISOString()}@batch-host-2`, 'PX', 180_000);
  await redis.set(`job-lock:default:${p}-legacy-export`, `ADDED:${new Date(Date.now() - 7_200_000).toISOString()}@old-host-9`);

  try {
    await login();
    // The pointer stays out of the way, so no hover state shows in the pictures.
    const park = () => page.mouse.move(2, 890);
    page.on('load', () => void park().catch(() => undefined));
    await page.emulateMedia({ colorScheme: 'light' });
    await page.goto('/');
    await waitLive(page);
    await expect(page.getByTestId('stat-held')).toContainText(/\d/);
    await expect(page.getByTestId('stat-waiters')).toContainText('3', { timeout: 5000 });
    await expect(page.getByTestId('attention')).toContainText('Orphaned', { timeout: 5000 });
    await expect(page.getByTestId('attention')).toContainText('Orphaned');
    await expect(page.getByText(`job-lock:default:${p}-legacy-export`).first()).toBeVisible({ timeout: 5000 });
    await page.screenshot({ path: screenshotPath('overview') });

    await page.goto('/locks');
    await expect(lockRow(page, 'cache', `job-lock:default:${p}-cleanup`)).toBeVisible({ timeout: 5000 });
    await expect(lockRow(page, 'local', contended)).toContainText('3');
    await page.screenshot({ path: screenshotPath('locks') });

    // The overview's "Most contended" entry links to the lock.
    await page.goto('/');
    await page.getByRole('link', { name: new RegExp(contended) }).first().click();
    await expect(page).toHaveURL((u) => u.pathname === '/lock' && u.searchParams.get('key') === contended);
    await expect(page.getByTestId('waiters').locator('li')).toHaveCount(3);
    await expect(page.getByTestId('waiters').locator('li').first()).toContainText('settle-worker-5.prod');
    await park();
    await page.screenshot({ path: screenshotPath('lock-detail-queue') });
    await page.getByRole('button', { name: 'Force-release…' }).click();
    const dialog = page.getByRole('alertdialog');
    await expect(dialog.getByTestId('release-next')).toContainText('settle-worker-5.prod');
    await expect(dialog.getByTestId('release-next')).toContainText('2 more behind it');
    await dialog.getByLabel(/Reason/).fill('settle-worker-2 lost its DB connection at 03:12 and stopped making progress (INC-2291)');
    await park();
    await page.screenshot({ path: screenshotPath('release-dialog-queue') });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expect(dialog).toBeHidden();

    await page.emulateMedia({ colorScheme: 'dark' });
    await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
    await page.screenshot({ path: screenshotPath('lock-detail-dark') });
    await page.goto('/locks');
    await expect(lockRow(page, 'local', contended)).toBeVisible();
    await page.screenshot({ path: screenshotPath('locks-dark') });
    await page.goto('/');
    await expect(page.getByTestId('stat-waiters')).toContainText('3');
    await page.screenshot({ path: screenshotPath('overview-dark') });
    // Some history for the audit log: a release, a refused one (holder changed), a viewer's try.
    const env = e2eEnv();
    const release = (token: string, body: Record<string, unknown>) =>
      fetch(`${env.baseURL}/api/locks/release`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await release(env.operatorToken, { backend: 'local', key: report.name, fence: report.fence, reason: 'revenue report hung after the DB failover (INC-2291)' })).status).toBe(200);
    expect((await release(env.operatorToken, { backend: 'cache', key: sync.name, fence: String(BigInt(sync.fence) + 1n), reason: 'sync looked stuck' })).status).toBe(409);
    expect((await release(env.viewerToken, { backend: 'local', key: contended, reason: 'trying as a viewer' })).status).toBe(403);
    await page.goto('/audit');
    await expect(page.getByTestId('audit-table')).toContainText('INC-2291');
    await page.screenshot({ path: screenshotPath('audit-dark') });
    await page.emulateMedia({ colorScheme: 'light' });
    await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');
    await page.screenshot({ path: screenshotPath('audit') });
  } finally {
    await Promise.allSettled(held.map((h) => h.release()));
    await redis.del(`job-lock:default:${p}-cleanup`, `job-lock:default:${p}-legacy-export`);
  }
});
