/**
 * Force-release from the dialog: it names what it releases and who is next, needs a reason,
 * traps focus and closes on Esc; releasing hands the lock to the blocked waiter; a holder that
 * changed while the dialog was open is refused (409) and explained with the new holder; every
 * attempt lands in the audit log with its reason.
 */
import { lockHref } from '../lib/client/locks';
import { expect, screenshotPath, test, waitLive } from './fixtures';

test('force-release from the dialog frees the lock and the waiting worker gets it', async ({ page, login, local, openLocal, ns }) => {
  const key = `${ns}/orders:settle`;
  const stuck = await local.tryAcquire(key, {
    ttlMs: 120_000,
    autoRenew: false,
    owner: 'worker-stuck-7',
    labels: { job: 'settle-orders', run: 'https://ci.example.test/runs/4242' },
  });
  expect(stuck).not.toBeNull();
  // Another process blocks on the same lock, as a second worker would.
  const waiting = openLocal().acquire(key, { waitMs: 30_000, ttlMs: 30_000, owner: 'worker-next-3', autoRenew: false });
  waiting.catch(() => undefined);

  await login();
  await page.goto(lockHref('local', key));
  await waitLive(page);
  await expect(page.getByTestId('holder-owner')).toHaveText('worker-stuck-7');
  await expect(page.getByTestId('waiters')).toContainText('worker-next-3');
  await page.screenshot({ path: screenshotPath('lock-detail') });

  const open = page.getByRole('button', { name: 'Force-release…' });
  await open.click();
  const dialog = page.getByRole('alertdialog', { name: 'Force-release this lock?' });
  await expect(dialog).toBeVisible();
  await expect(dialog.getByTestId('release-key')).toHaveText(key);
  await expect(dialog.getByTestId('release-owner')).toHaveText('worker-stuck-7');
  await expect(dialog.getByTestId('release-fence')).toHaveText(stuck!.fence);
  await expect(dialog.getByTestId('release-next')).toContainText('worker-next-3');
  const reason = dialog.getByLabel(/Reason/);
  await expect(reason).toBeFocused();

  // Focus stays inside the dialog, however far one tabs, both ways.
  for (let i = 0; i < 8; i++) {
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => !!document.activeElement?.closest('[role="alertdialog"]'))).toBe(true);
  }
  for (let i = 0; i < 5; i++) {
    await page.keyboard.press('Shift+Tab');
    expect(await page.evaluate(() => !!document.activeElement?.closest('[role="alertdialog"]'))).toBe(true);
  }
  // Esc closes it, and focus goes back to the button that opened it.
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();
  await expect(open).toBeFocused();

  await open.click();
  await expect(dialog).toBeVisible();
  // No reason, no release.
  await dialog.getByRole('button', { name: 'Force-release' }).click();
  await expect(dialog.getByText('Say why the lock is being released.')).toBeVisible();
  const why = `e2e ${ns}: worker-stuck-7 hung on a dead DB connection`;
  await dialog.getByLabel(/Reason/).fill(why);
  await page.screenshot({ path: screenshotPath('release-dialog') });
  await dialog.getByRole('button', { name: 'Force-release' }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByRole('status').filter({ hasText: `Released ${key}` })).toBeVisible();

  // The blocked worker gets the lock, with a newer fence, and the page shows it as the holder.
  const next = await waiting;
  expect(next.owner.id).toBe('worker-next-3');
  expect(BigInt(next.fence) > BigInt(stuck!.fence)).toBe(true);
  await expect(page.getByTestId('holder-owner')).toHaveText('worker-next-3', { timeout: 5000 });
  await expect(page.getByTestId('holder-fence')).toHaveText(next.fence);
  // The old holder is told (this backend notifies holders on force).
  await expect.poll(() => stuck!.held, { timeout: 5000 }).toBe(false);
  await expect(page.getByTestId('history')).toContainText('Force-released');

  // The audit log has the attempt, with its reason, newest first.
  await page.getByRole('link', { name: 'Audit' }).click();
  await expect(page).toHaveURL(/\/audit$/);
  const entry = page.getByTestId('audit-table').locator('tbody tr').filter({ hasText: key }).first();
  await expect(entry).toContainText(why);
  await expect(entry).toContainText('Released');
  await expect(entry).toContainText('operator');
  await expect(entry).toContainText('worker-stuck-7');
  await page.getByLabel('Key (exact; press Enter)').fill(key);
  await page.getByLabel('Key (exact; press Enter)').press('Enter');
  await expect(page).toHaveURL(/\/audit\?key=/);
  await expect(page.getByTestId('audit-table').locator('tbody tr')).toHaveCount(1);
  await page.getByLabel('Result').selectOption('changed');
  await expect(page.getByText('No attempts match these filters')).toBeVisible();
  await page.getByLabel('Result').selectOption('released');
  await expect(page.getByTestId('audit-table').locator('tbody tr')).toHaveCount(1);
  await next.release();
});

test('a holder that changed while the dialog was open is refused with 409 and the new holder is shown', async ({ page, login, local, ns }) => {
  const key = `${ns}/reports:daily`;
  const old = await local.tryAcquire(key, { ttlMs: 120_000, autoRenew: false, owner: 'worker-old' });
  expect(old).not.toBeNull();
  await login();
  await page.goto(lockHref('local', key));
  await waitLive(page);
  await page.getByRole('button', { name: 'Force-release…' }).click();
  const dialog = page.getByRole('alertdialog');
  await expect(dialog.getByTestId('release-fence')).toHaveText(old!.fence);

  // While the operator reads the dialog, the job finishes and another worker takes the lock.
  await old!.release();
  const fresh = await local.tryAcquire(key, { ttlMs: 120_000, autoRenew: false, owner: 'worker-new' });
  expect(fresh).not.toBeNull();
  await expect(dialog.getByText('This lock changed hands while this dialog was open')).toBeVisible({ timeout: 5000 });

  await dialog.getByLabel(/Reason/).fill(`e2e ${ns}: looked stuck`);
  const answer = page.waitForResponse((r) => r.url().endsWith('/api/locks/release'));
  await dialog.getByRole('button', { name: 'Force-release' }).click();
  expect((await answer).status()).toBe(409);
  const conflict = dialog.getByTestId('release-conflict');
  await expect(conflict).toContainText('The holder changed: nothing was released');
  await expect(dialog.getByTestId('conflict-owner')).toHaveText('worker-new');
  await expect(dialog.getByTestId('conflict-fence')).toHaveText(fresh!.fence);
  await page.screenshot({ path: screenshotPath('release-409') });
  // Nothing was released: the new holder still holds it.
  expect(fresh!.held).toBe(true);
  expect((await local.get(key))?.owner).toBe('worker-new');

  // Reviewing the new holder starts over with that holder named; nothing is sent until confirmed.
  await dialog.getByRole('button', { name: 'Review the new holder…' }).click();
  await expect(dialog.getByTestId('release-owner')).toHaveText('worker-new');
  await expect(dialog.getByTestId('release-fence')).toHaveText(fresh!.fence);
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(dialog).toBeHidden();
  expect(fresh!.held).toBe(true);

  await page.goto(`/audit?key=${encodeURIComponent(key)}`);
  const entry = page.getByTestId('audit-table').locator('tbody tr').first();
  await expect(entry).toContainText('Holder changed');
  await expect(entry).toContainText('409');
  await expect(entry).toContainText('looked stuck');
  await fresh!.release();
});

test('releasing from the lock list: the row leaves the table', async ({ page, login, cache, ns }) => {
  const key = `${ns}:cache-warmup`;
  const h = await cache.tryAcquire(key, { ttlMs: 120_000, autoRenew: false, owner: 'warmer-1' });
  expect(h).not.toBeNull();
  await login();
  await page.goto(`/locks?q=${ns}`);
  const row = page.locator(`[role="row"][data-backend="cache"][data-lock-key="${key}"]`);
  await expect(row).toBeVisible();
  await row.getByRole('button', { name: `Force-release ${key} on cache` }).click();
  const dialog = page.getByRole('alertdialog');
  await expect(dialog.getByTestId('release-next')).toContainText('nobody is waiting');
  await dialog.getByLabel(/Reason/).fill(`e2e ${ns}: stale warm-up`);
  await dialog.getByRole('button', { name: 'Force-release' }).click();
  await expect(row).toHaveCount(0);
  await expect(page.getByText('No locks match these filters')).toBeVisible();
  await expect.poll(() => h!.held, { timeout: 5000 }).toBe(false);
});
