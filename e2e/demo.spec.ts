/**
 * The demo fleet (scripts/demo-fleet.ts: three scheduler instances contending for four jobs,
 * three workers queueing for `inventory/warehouse-7`, a worker that dies holding
 * `payment-reconciler`) run as separate processes against the e2e console's SQLite store; then
 * the scheduler and contention views must show its activity. Photographed for docs/screenshots.
 */
import { spawn, type ChildProcess } from 'node:child_process';

import { ROOT } from '../test/console/harness';
import { expect, screenshotPath, test, waitLive } from './fixtures';
import { e2eEnv } from './support/env';

const JOBS = ['nightly-report', 'invoice-sync', 'cache-warmup', 'email-digest'];
const ROLES = [['scheduler', 'scheduler-1'], ['scheduler', 'scheduler-2'], ['scheduler', 'scheduler-3'], ['contenders'], ['doomed']];

/** Starts one fleet role in its own process group (the doomed role forks a child of its own). */
function startRole(args: string[], output: string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo-fleet.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, LOCKDECK_DEMO_DB: e2eEnv().sqlitePath },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const collect = (d: Buffer) => {
    output.push(...d.toString().split('\n').filter(Boolean).map((l) => `[${args.join(' ')}] ${l}`));
    if (output.length > 500) output.splice(0, output.length - 500);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  return child;
}

/** SIGTERM to each role's process group, SIGKILL after 5 s; resolves when every role exited. */
async function stopFleet(children: ChildProcess[]): Promise<void> {
  const signal = (c: ChildProcess, sig: NodeJS.Signals) => {
    try {
      if (c.pid) process.kill(-c.pid, sig);
    } catch {
      // already gone
    }
  };
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) {
            signal(c, 'SIGKILL'); // a forked grandchild may still be alive in the group
            return resolve();
          }
          const killer = setTimeout(() => signal(c, 'SIGKILL'), 5000);
          c.once('exit', () => {
            clearTimeout(killer);
            signal(c, 'SIGKILL');
            resolve();
          });
          signal(c, 'SIGTERM');
        }),
    ),
  );
}

test('the demo fleet: scheduler and contention views show its jobs, instances and contention', async ({ page, login }) => {
  test.setTimeout(150_000);
  const output: string[] = [];
  const fleet = ROLES.map((r) => startRole(r, output));
  try {
    await login();
    const park = () => page.mouse.move(2, 890);
    page.on('load', () => void park().catch(() => undefined));
    await page.emulateMedia({ colorScheme: 'light' });

    // Let the fleet run: every job has several occurrences, the workers have queued many times.
    await page.waitForTimeout(18_000);
    for (const c of fleet) expect(c.exitCode, `fleet process exited early:\n${output.slice(-30).join('\n')}`).toBeNull();

    await page.goto('/scheduler');
    await waitLive(page);
    const local = page.locator('[data-testid="scheduler-backend"][data-backend="local"]');
    const table = local.getByTestId('jobs-table');
    for (const job of JOBS) await expect(table.locator(`tr[data-job="${job}"]`)).toBeVisible();
    // Schedules in words, and a next run counting down by the server clock.
    await expect(table.locator('tr[data-job="invoice-sync"]')).toContainText('every 5 seconds');
    await expect(table.locator('tr[data-job="cache-warmup"]')).toContainText('every 10 seconds');
    await expect(table.locator('tr[data-job="invoice-sync"]').getByTestId('next-run')).toContainText(/in \d+s|due now/);
    // Every instance that ran the busiest job is a row of its grid; it has ran and skipped cells.
    const grid = local.locator('[data-testid="occurrence-grid"][data-job="invoice-sync"]');
    for (const inst of ['scheduler-1', 'scheduler-2', 'scheduler-3']) await expect(grid.locator(`tr[data-instance="${inst}"]`)).toBeVisible();
    await expect(grid.locator('td[data-outcome="ran"]').first()).toBeVisible();
    await expect(grid.locator('td[data-outcome="skipped"]').first()).toBeVisible();
    expect(await grid.locator('td[data-outcome="ran"]').count()).toBeGreaterThanOrEqual(2);
    await expect(local.getByTestId('grid-legend')).toContainText('skipped');
    await park();
    await page.screenshot({ path: screenshotPath('scheduler'), fullPage: true });

    await page.goto('/contention?window=15m');
    const ranking = page.getByTestId('contention-ranking');
    const row = ranking.locator('tr[data-backend="local"][data-lock-key="inventory/warehouse-7"]');
    await expect(row).toBeVisible();
    // The three workers queue for it: it is the most contended lock, and some acquisitions waited.
    await expect(ranking.locator('tbody tr').first()).toHaveAttribute('data-lock-key', 'inventory/warehouse-7');
    await expect(row).toContainText(/[1-9]\d* \/ [1-9]/);
    await park();
    await page.screenshot({ path: screenshotPath('contention') });

    await row.getByRole('link').click();
    await expect(page).toHaveURL((u) => u.pathname === '/contention/lock' && u.searchParams.get('key') === 'inventory/warehouse-7');
    await expect(page.getByTestId('stat-acquisitions')).toContainText(/[1-9]/);
    for (const id of ['chart-acquisitions', 'chart-waiters', 'chart-wait', 'chart-hold']) await expect(page.getByTestId(id).locator('svg.recharts-surface').first()).toBeVisible();
    await expect(page.getByTestId('chart-wait').locator('figcaption')).toContainText(/p50 .* p95 .* max/);
    await expect(page.getByTestId('chart-waiters').locator('figcaption')).toContainText(/Up to \d+ waiters?/);
    await park();
    await page.screenshot({ path: screenshotPath('contention-lock'), fullPage: true });

    await page.emulateMedia({ colorScheme: 'dark' });
    await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
    await page.screenshot({ path: screenshotPath('contention-lock-dark'), fullPage: true });
    await page.goto('/scheduler');
    await expect(page.getByTestId('jobs-table').first()).toBeVisible();
    await park();
    await page.screenshot({ path: screenshotPath('scheduler-dark'), fullPage: true });
  } finally {
    await stopFleet(fleet);
  }
  for (const c of fleet) expect(c.exitCode !== null || c.signalCode !== null).toBe(true);
});
