/**
 * Signing in and out, and what a viewer may not do: the pages hide the release buttons, and the
 * server refuses anyway.
 */
import { lockHref } from '../lib/client/locks';
import { expect, lockRow, screenshotPath, test, waitLive } from './fixtures';
import { e2eEnv } from './support/env';

test('a visitor without a session is sent to the login page and back where they were going', async ({ page }) => {
  await page.goto('/locks?health=expired');
  await expect(page).toHaveURL(/\/login\?next=%2Flocks%3Fhealth%3Dexpired$/);
  await expect(page.getByRole('heading', { name: 'Sign in to the lock console' })).toBeVisible();
  const token = page.getByLabel('Access token');
  await expect(token).toBeFocused();
  await page.screenshot({ path: screenshotPath('login') });

  await token.fill('not-the-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'not valid' })).toHaveText('That token is not valid for this console.');

  await token.fill(e2eEnv().viewerToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/locks\?health=expired$/);
  await expect(page.getByTestId('role-badge')).toHaveText('viewer');

  // Signing out clears the session: the API answers 401 and pages lead to the login form.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  expect((await page.request.get('/api/session')).status()).toBe(401);
  await page.goto('/audit');
  await expect(page).toHaveURL(/\/login\?next=%2Faudit$/);
});

test('a viewer sees locks but no release button, and the server refuses a release anyway', async ({ page, login, local, ns }) => {
  const key = `${ns}/inventory:sync`;
  const h = await local.tryAcquire(key, { ttlMs: 120_000, autoRenew: false, owner: 'sync-1' });
  expect(h).not.toBeNull();
  await login('viewer');
  await page.goto(`/locks?q=${ns}`);
  await waitLive(page);
  const row = lockRow(page, 'local', key);
  await expect(row).toBeVisible();
  await expect(page.getByRole('button', { name: /Force-release|Release…/ })).toHaveCount(0);
  await expect(page.getByRole('columnheader', { name: 'Action' })).toHaveCount(0);

  await page.goto(lockHref('local', key));
  await expect(page.getByTestId('holder-owner')).toHaveText('sync-1');
  await expect(page.getByRole('button', { name: 'Force-release…' })).toHaveCount(0);
  await expect(page.getByText('You are signed in as a viewer')).toBeVisible();

  const res = await page.request.post('/api/locks/release', {
    data: { backend: 'local', key, fence: h!.fence, reason: 'a viewer trying' },
    headers: { origin: e2eEnv().baseURL },
  });
  expect(res.status()).toBe(403);
  expect(h!.held).toBe(true);
});

test('the theme follows the system, and a chosen theme sticks across reloads without a flash', async ({ page, login }) => {
  await login();
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto('/');
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await page.emulateMedia({ colorScheme: 'light' });
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');

  // System → Light → Dark.
  const toggle = page.getByRole('button', { name: /^Theme:/ });
  await toggle.click();
  await expect(toggle).toHaveAttribute('data-theme-pref', 'light');
  await toggle.click();
  await expect(toggle).toHaveAttribute('data-theme-pref', 'dark');
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');

  // The inline script sets it before the first paint: check at DOMContentLoaded, before React.
  const themes: string[] = [];
  page.on('domcontentloaded', async () => themes.push((await page.locator('html').getAttribute('data-theme')) ?? ''));
  await page.reload({ waitUntil: 'domcontentloaded' });
  await expect.poll(() => themes[0]).toBe('dark');
  await toggle.click();
  await expect(toggle).toHaveAttribute('data-theme-pref', 'system');
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');
});
