import { expect, screenshotPath, test, waitLive } from './fixtures';

test('the health route answers without credentials', async ({ request }) => {
  const res = await request.get('/api/health');
  expect(res.status()).toBe(200);
  expect(await res.json()).toEqual({ ok: true });
});

test('the home page is the overview: both backends up, counts and what needs attention', async ({ page, login }) => {
  await login('operator');
  await page.goto('/');
  await expect(page.getByRole('heading', { level: 1, name: 'Overview' })).toBeVisible();
  await waitLive(page);
  const backends = page.getByRole('table', { name: 'Backends' });
  for (const id of ['local', 'cache']) {
    await expect(backends.locator(`tr[data-backend="${id}"]`)).toContainText('Up');
  }
  await expect(page.getByTestId('stat-backends')).toContainText('2 / 2');
  await expect(page.getByTestId('attention')).toBeVisible();
  await page.screenshot({ path: screenshotPath('smoke-overview') });
});
