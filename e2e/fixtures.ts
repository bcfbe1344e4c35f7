/**
 * The browser tests' fixtures: backends made through lib/ (as applications make them) to seed
 * locks, a per-test namespace (key prefix) so tests never see each other's locks, and login
 * through the API (only the login test drives the login form).
 *
 * Each fixture cleans up only what it made: closing a backend releases the handles it holds, and
 * the Redis fixture deletes only keys under the test's namespace.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

import { expect, test as base, type BrowserContext, type Page } from '@playwright/test';
import { Redis } from 'ioredis';

import { createRedisBackend } from '../lib/backends/redis';
import { createSqliteBackend } from '../lib/backends/sqlite';
import type { LockBackend } from '../lib/locks/types';
import { e2eEnv } from './support/env';

export { expect };

export type Role = 'operator' | 'viewer';

interface Fixtures {
  /** A key prefix unique to this test. */
  ns: string;
  /** Opens more backends on the shared stores (another process's view); all closed after the test. */
  openLocal: () => LockBackend;
  openCache: () => LockBackend;
  /** The shared SQLite store (`local` in the console). */
  local: LockBackend;
  /** The shared Redis (`cache` in the console). */
  cache: LockBackend;
  /** A raw Redis client, for foreign layouts (ShedLock, Redisson...). */
  redis: Redis;
  /** Logs this page's context in with the operator or viewer token. */
  login: (role?: Role, context?: BrowserContext) => Promise<void>;
}

export const test = base.extend<Fixtures>({
  // eslint-disable-next-line no-empty-pattern
  ns: async ({}, use, info) => {
    const slug = info.title.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 24).replace(/-+$/, '');
    await use(`e2e-${slug}-${randomBytes(3).toString('hex')}`);
  },
  // eslint-disable-next-line no-empty-pattern
  openLocal: async ({}, use) => {
    const made: LockBackend[] = [];
    const { sqlitePath } = e2eEnv();
    await use(() => {
      const b = createSqliteBackend({ id: 'local', type: 'sqlite', path: sqlitePath });
      made.push(b);
      return b;
    });
    await Promise.allSettled(made.map((b) => b.close()));
  },
  // eslint-disable-next-line no-empty-pattern
  openCache: async ({}, use) => {
    const made: LockBackend[] = [];
    const { redisUrl } = e2eEnv();
    await use(() => {
      const b = createRedisBackend({ id: 'cache', type: 'redis', url: redisUrl });
      made.push(b);
      return b;
    });
    await Promise.allSettled(made.map((b) => b.close()));
  },
  local: async ({ openLocal }, use) => {
    await use(openLocal());
  },
  cache: async ({ openCache }, use) => {
    await use(openCache());
  },
  redis: async ({ ns }, use) => {
    const client = new Redis(e2eEnv().redisUrl, { maxRetriesPerRequest: 1 });
    await use(client);
    // Foreign-layout keys this test wrote (they all carry the namespace).
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `*${ns}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await client.del(...keys);
    } while (cursor !== '0');
    client.disconnect();
  },
  login: async ({ page }, use) => {
    await use(async (role: Role = 'operator', context: BrowserContext = page.context()) => {
      const env = e2eEnv();
      const res = await context.request.post('/api/login', {
        data: { token: role === 'operator' ? env.operatorToken : env.viewerToken },
        // The login route is CSRF-checked like every mutation: a browser sends its own Origin.
        headers: { origin: env.baseURL },
      });
      expect(res.status(), await res.text()).toBe(200);
    });
  },
});

/** Where the run's screenshots go (gitignored); the best are copied to docs/screenshots/. */
export function screenshotPath(name: string): string {
  return fileURLToPath(new URL(`./screenshots/${name}.png`, import.meta.url));
}

/** Waits until the header says the event stream is live (snapshot received). */
export async function waitLive(page: Page): Promise<void> {
  await expect(page.locator('header [data-sync-state]')).toHaveAttribute('data-sync-state', 'live', { timeout: 15_000 });
}

/** The table row of one lock on /locks. */
export function lockRow(page: Page, backend: string, key: string) {
  return page.locator(`[role="row"][data-backend="${backend}"][data-lock-key="${key.replace(/["\\]/g, '\\$&')}"]`);
}
