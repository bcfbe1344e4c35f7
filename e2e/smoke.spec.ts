import { fileURLToPath } from 'node:url';

import { expect, test } from '@playwright/test';

const screenshot = (name: string) =>
  fileURLToPath(new URL(`./screenshots/${name}.png`, import.meta.url));

test('the health route answers without credentials', async ({ request }) => {
  const res = await request.get('/api/health');
  expect(res.status()).toBe(200);
  expect(await res.json()).toEqual({ ok: true });
});

test('the home page shows the console and a live API', async ({ page }) => {
  const health = page.waitForResponse(
    (res) => new URL(res.url()).pathname === '/api/health' && res.request().method() === 'GET',
  );
  await page.goto('/');

  await expect(page.getByRole('heading', { level: 1, name: 'Lock console' })).toBeVisible();
  expect((await health).status()).toBe(200);
  await expect(page.getByRole('status')).toHaveText('API: ok');

  await page.screenshot({ path: screenshot('home') });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: screenshot('home-dark') });
});
