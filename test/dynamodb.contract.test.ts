import { afterEach, describe, expect, inject, it, vi } from 'vitest';

import { createDynamoDbBackend, createLockTable, makeDynamoDbClient } from '../lib/backends/dynamodb';
import { randomId } from '../lib/locks/util';
import { runBackendContract } from './contract';

// Each make() has its own SDK client, as a separate process would; all share one fresh table in
// the AWS lock client's layout on the harness's dynalite.
runBackendContract('dynamodb', async () => {
  const endpoint = inject('dynamodbEndpoint');
  const table = `lockdeck-ct-${randomId(4).replace(/[^A-Za-z0-9]/g, 'x')}`;
  const admin = makeDynamoDbClient({ endpoint, region: 'us-east-1' });
  await createLockTable(admin, table);
  admin.destroy();
  return {
    make: async () => createDynamoDbBackend({ id: 'ddb-test', type: 'dynamodb', endpoint, region: 'us-east-1', tables: [table] }),
  };
});

describe('dynamodb takeover clock', () => {
  afterEach(() => vi.restoreAllMocks());

  it('regression (torture: clock-jump): a waiter whose wall clock stepped ahead takes no live lock', async () => {
    // Before: a waiter took over a lockdeck item once its stored wall-clock expiry (+1 s skew)
    // had passed by the waiter's own Date.now(): 135 overlapping critical sections in the torture
    // clock-jump × dynamodb cell. Now only the version-unchanged-for-leaseDuration rule, on the
    // monotonic clock, lets a waiter take a lock over.
    const endpoint = inject('dynamodbEndpoint');
    const table = `lockdeck-clk-${randomId(4).replace(/[^A-Za-z0-9]/g, 'x')}`;
    const admin = makeDynamoDbClient({ endpoint, region: 'us-east-1' });
    await createLockTable(admin, table);
    admin.destroy();
    const config = { id: 'ddb-clock', type: 'dynamodb' as const, endpoint, region: 'us-east-1', tables: [table] };
    const a = createDynamoDbBackend(config);
    const b = createDynamoDbBackend(config);
    try {
      const held = await a.acquire('nightly', { ttlMs: 10_000, autoRenew: false });
      const realNow = Date.now.bind(Date);
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 3_600_000); // NTP step, or an operator
      expect(await b.tryAcquire('nightly', { ttlMs: 10_000 })).toBeNull();
      await expect(b.acquire('nightly', { ttlMs: 10_000, waitMs: 1000 })).rejects.toThrow(/still held/);
      expect(held.held).toBe(true);
      vi.restoreAllMocks();
      await held.release();
      const next = await b.tryAcquire('nightly', { ttlMs: 10_000 });
      expect(next).not.toBeNull();
      await next!.release();
    } finally {
      vi.restoreAllMocks();
      await Promise.all([a.close(), b.close()]);
    }
  });
});
