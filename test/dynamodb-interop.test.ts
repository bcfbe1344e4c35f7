/**
 * lockdeck and the AWS DynamoDB lock client (awslabs/amazon-dynamodb-lock-client,
 * AmazonDynamoDBLockClient.java) respecting each other's locks, and ShedLock's DynamoDB items in
 * the inspector. The foreign side is written request by request as the Java client sends it: the
 * same attribute names and types, the same condition expressions and expression variables.
 */
import { randomUUID } from 'node:crypto';

import { DeleteItemCommand, GetItemCommand, PutItemCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';

import { createDynamoDbBackend, createLockTable, makeDynamoDbClient } from '../lib/backends/dynamodb';
import { AcquireTimeoutError, compareFences, tokenHash, type LockBackend } from '../lib/locks';
import { randomId } from '../lib/locks/util';

const REGION = 'us-east-1';
const tableName = (label: string) => `ld-${label}-${randomId(4).replace(/[^A-Za-z0-9]/g, 'x')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The Java client's requests (AmazonDynamoDBLockClient.java, no sort key, default options). */
class AwsStyleClient {
  constructor(
    private readonly ddb: DynamoDBClient,
    private readonly table: string,
    readonly ownerName = `test-host${randomUUID()}`,
  ) {}

  /** upsertAndMonitorNewLock: PutItem, ACQUIRE_LOCK_THAT_DOESNT_EXIST_PK_CONDITION. */
  async acquireNew(key: string, leaseMs: number): Promise<string> {
    const rvn = randomUUID();
    await this.ddb.send(
      new PutItemCommand({
        TableName: this.table,
        Item: { key: { S: key }, ownerName: { S: this.ownerName }, leaseDuration: { S: String(leaseMs) }, recordVersionNumber: { S: rvn } },
        ConditionExpression: 'attribute_not_exists(#pk)',
        ExpressionAttributeNames: { '#pk': 'key' },
      }),
    );
    return rvn;
  }

  /** upsertAndMonitorReleasedLock (acquireReleasedLocksConsistently false): PK_EXISTS_AND_IS_RELEASED_CONDITION. */
  async acquireReleased(key: string, leaseMs: number): Promise<string> {
    const rvn = randomUUID();
    await this.ddb.send(
      new PutItemCommand({
        TableName: this.table,
        Item: { key: { S: key }, ownerName: { S: this.ownerName }, leaseDuration: { S: String(leaseMs) }, recordVersionNumber: { S: rvn } },
        ConditionExpression: 'attribute_exists(#pk) AND #ir = :ir',
        ExpressionAttributeNames: { '#pk': 'key', '#ir': 'isReleased' },
        ExpressionAttributeValues: { ':ir': { S: '1' } },
      }),
    );
    return rvn;
  }

  /** upsertAndMonitorExpiredLock: PutItem, PK_EXISTS_AND_RVN_IS_THE_SAME_CONDITION. */
  async acquireExpired(key: string, leaseMs: number, seenRvn: string): Promise<string> {
    const rvn = randomUUID();
    await this.ddb.send(
      new PutItemCommand({
        TableName: this.table,
        Item: { key: { S: key }, ownerName: { S: this.ownerName }, leaseDuration: { S: String(leaseMs) }, recordVersionNumber: { S: rvn } },
        ConditionExpression: 'attribute_exists(#pk) AND #rvn = :rvn',
        ExpressionAttributeNames: { '#pk': 'key', '#rvn': 'recordVersionNumber' },
        ExpressionAttributeValues: { ':rvn': { S: seenRvn } },
      }),
    );
    return rvn;
  }

  /** sendHeartbeat: UPDATE_LEASE_DURATION_AND_RVN under PK_EXISTS_AND_OWNER_NAME_SAME_AND_RVN_SAME_CONDITION. */
  async heartbeat(key: string, leaseMs: number, rvn: string): Promise<string> {
    const next = randomUUID();
    await this.ddb.send(
      new UpdateItemCommand({
        TableName: this.table,
        Key: { key: { S: key } },
        UpdateExpression: 'SET #ld = :ld, #rvn = :newRvn',
        ConditionExpression: 'attribute_exists(#pk) AND #rvn = :rvn AND #on = :on',
        ExpressionAttributeNames: { '#pk': 'key', '#ld': 'leaseDuration', '#rvn': 'recordVersionNumber', '#on': 'ownerName' },
        ExpressionAttributeValues: { ':ld': { S: String(leaseMs) }, ':newRvn': { S: next }, ':rvn': { S: rvn }, ':on': { S: this.ownerName } },
      }),
    );
    return next;
  }

  /** releaseLock with deleteLock (the default): DeleteItem under the owner+RVN condition. */
  async releaseDelete(key: string, rvn: string): Promise<void> {
    await this.ddb.send(
      new DeleteItemCommand({
        TableName: this.table,
        Key: { key: { S: key } },
        ConditionExpression: 'attribute_exists(#pk) AND #rvn = :rvn AND #on = :on',
        ExpressionAttributeNames: { '#pk': 'key', '#rvn': 'recordVersionNumber', '#on': 'ownerName' },
        ExpressionAttributeValues: { ':rvn': { S: rvn }, ':on': { S: this.ownerName } },
      }),
    );
  }
}

const condFailed = { name: 'ConditionalCheckFailedException' };

describe('dynamodb: interop with the AWS lock client layout and ShedLock', { timeout: 30_000 }, () => {
  const endpoint = inject('dynamodbEndpoint');
  let ddb: DynamoDBClient;
  let table: string;
  let shedTable: string;
  let sortTable: string;
  let lockdeck: LockBackend;
  let other: LockBackend;
  let multi: LockBackend;
  let aws: AwsStyleClient;
  const getItem = async (t: string, key: Record<string, AttributeValue>) => (await ddb.send(new GetItemCommand({ TableName: t, Key: key, ConsistentRead: true }))).Item;

  beforeAll(async () => {
    ddb = makeDynamoDbClient({ endpoint, region: REGION });
    table = tableName('interop');
    shedTable = tableName('shedlock');
    sortTable = tableName('sorted');
    const made = await createLockTable(ddb, table);
    expect(made).toEqual({ created: true, ttl: 'unsupported' }); // dynalite has no UpdateTimeToLive
    expect((await createLockTable(ddb, table)).created).toBe(false);
    await createLockTable(ddb, shedTable, { partitionKey: '_id', ttl: false });
    await createLockTable(ddb, sortTable, { sortKey: 'sortKey', ttl: false });
    lockdeck = createDynamoDbBackend({ id: 'ddb', type: 'dynamodb', endpoint, region: REGION, tables: [table, shedTable] });
    other = createDynamoDbBackend({ id: 'ddb', type: 'dynamodb', endpoint, region: REGION, tables: [table] });
    multi = createDynamoDbBackend({ id: 'ddb', type: 'dynamodb', endpoint, region: REGION, tables: [sortTable, table] });
    aws = new AwsStyleClient(ddb, table);
  });

  afterAll(async () => {
    await Promise.all([lockdeck?.close(), other?.close(), multi?.close()]);
    ddb?.destroy();
  });

  it('cannot take a foreign lock whose record version keeps changing, and takes it over after leaseDuration without a change', async () => {
    const key = `aws-live-${randomId(4)}`;
    const leaseMs = 600;
    let rvn = await aws.acquireNew(key, leaseMs);
    let beating = true;
    const beats = (async () => {
      while (beating) {
        await sleep(150);
        if (beating) rvn = await aws.heartbeat(key, leaseMs, rvn);
      }
    })();
    await expect(lockdeck.acquire(key, { ttlMs: 2000, waitMs: 1500 })).rejects.toBeInstanceOf(AcquireTimeoutError);
    const info = await lockdeck.get(key);
    expect(info).toMatchObject({ key, format: 'aws-lock-client', owner: aws.ownerName, fence: null, acquiredAt: null });
    expect(String(info!.meta?.ttlSource)).toMatch(/^estimated/);
    expect(info!.ttlMs).toBeLessThanOrEqual(leaseMs);
    beating = false;
    await beats;
    const lastBeat = performance.now();
    const h = await lockdeck.acquire(key, { ttlMs: 2000, waitMs: 5000 });
    // The AWS rule: the version must be seen unchanged for a whole leaseDuration.
    expect(performance.now() - lastBeat).toBeGreaterThanOrEqual(leaseMs);
    // The foreign holder's next heartbeat fails: its version is gone.
    await expect(aws.heartbeat(key, leaseMs, rvn)).rejects.toMatchObject(condFailed);
    expect((await lockdeck.get(key))?.format).toBe('lockdeck');
    await h.release();
  });

  it("refuses the AWS client's acquire requests while lockdeck holds, and lets it in after lockdeck releases", async () => {
    const key = `ld-held-${randomId(4)}`;
    const h = await lockdeck.acquire(key, { ttlMs: 600 });
    await expect(aws.acquireNew(key, 20_000)).rejects.toMatchObject(condFailed);
    await expect(aws.acquireReleased(key, 20_000)).rejects.toMatchObject(condFailed);
    // The Java waiter's view: the record version changes within leaseDuration (heartbeats at ttl/3),
    // so LockItem.isExpired() never becomes true and upsertAndMonitorExpiredLock is never tried.
    const item1 = await getItem(table, { key: { S: key } });
    expect(item1?.leaseDuration?.S).toBe('600');
    expect(item1?.ownerName?.S).toBe(h.owner.id);
    await sleep(650);
    const item2 = await getItem(table, { key: { S: key } });
    expect(item2?.recordVersionNumber?.S).not.toBe(item1?.recordVersionNumber?.S);
    await expect(aws.acquireExpired(key, 20_000, item1!.recordVersionNumber!.S!)).rejects.toMatchObject(condFailed);
    expect(h.held).toBe(true);
    await h.release();
    // Released the way the Java client understands (isReleased present): its released-lock path wins.
    const rvn = await aws.acquireReleased(key, 20_000);
    expect(await other.tryAcquire(key, { ttlMs: 1000 })).toBeNull();
    await aws.releaseDelete(key, rvn);
  });

  it('keeps fences increasing when the AWS client rewrote and deleted the item in between', async () => {
    const key = `ld-fence-${randomId(4)}`;
    const h1 = await lockdeck.acquire(key, { ttlMs: 5000 });
    await h1.release();
    const rvn = await aws.acquireReleased(key, 20_000); // PutItem: our counter attribute is gone
    await aws.releaseDelete(key, rvn); // and now the item too
    const h2 = await other.acquire(key, { ttlMs: 5000 });
    expect(compareFences(h2.fence, h1.fence)).toBe(1);
    await h2.release();
  });

  it('force-releases a foreign lock only at the record version the operator saw, and changes that version', async () => {
    const key = `aws-force-${randomId(4)}`;
    const rvn1 = await aws.acquireNew(key, 20_000);
    const seen = await lockdeck.get(key);
    expect(seen?.meta?.valueHash).toBe(tokenHash(rvn1));
    const rvn2 = await aws.heartbeat(key, 20_000, rvn1);
    // Stale version: nothing changes.
    const stale = await lockdeck.forceRelease(key, { valueHash: tokenHash(rvn1) } as never);
    expect(stale.status).toBe('changed');
    const after = await getItem(table, { key: { S: key } });
    expect(after?.recordVersionNumber?.S).toBe(rvn2);
    expect(after?.isReleased).toBeUndefined();
    expect((await lockdeck.forceRelease(key, { owner: 'someone-else' })).status).toBe('changed');
    // Current version: released with a NEW version, so the live holder's heartbeat fails.
    const res = await lockdeck.forceRelease(key, { valueHash: tokenHash(rvn2), owner: aws.ownerName } as never);
    expect(res.status).toBe('released');
    const released = await getItem(table, { key: { S: key } });
    expect(released?.isReleased?.S).toBe('1');
    expect(released?.recordVersionNumber?.S).not.toBe(rvn2);
    await expect(aws.heartbeat(key, 20_000, rvn2)).rejects.toMatchObject(condFailed);
    expect(await lockdeck.get(key)).toBeNull();
    expect((await lockdeck.forceRelease(key)).status).toBe('not-found');
  });

  it("lists ShedLock's items that are held, with owner and times, and releases one conditionally", async () => {
    const now = Date.now();
    const iso = (ms: number) => new Date(ms).toISOString(); // 3 fractional digits, as ShedLock writes
    // DynamoDBLockProvider: _id, lockUntil, lockedAt, lockedBy (all S).
    const put = (id: string, until: number, by: string) =>
      ddb.send(new PutItemCommand({ TableName: shedTable, Item: { _id: { S: id }, lockUntil: { S: iso(until) }, lockedAt: { S: iso(now - 1000) }, lockedBy: { S: by } } }));
    await put('report-job', now + 60_000, 'worker-7');
    await put('old-job', now - 5000, 'worker-8'); // lockUntil passed: free (ShedLock never deletes)
    const listed = await lockdeck.list();
    const shed = listed.filter((l) => l.format === 'shedlock');
    expect(shed.map((l) => l.key)).toEqual([`${shedTable}/report-job`]);
    expect(shed[0]).toMatchObject({ owner: 'worker-7', acquiredAt: now - 1000, expiresAt: now + 60_000, health: 'ok' });
    const key = `${shedTable}/report-job`;
    expect((await lockdeck.forceRelease(key, { owner: 'worker-1' })).status).toBe('changed');
    expect((await lockdeck.forceRelease(key, { owner: 'worker-7' })).status).toBe('released');
    const item = await getItem(shedTable, { _id: { S: 'report-job' } });
    expect(Date.parse(item!.lockUntil!.S!)).toBeLessThanOrEqual(Date.now());
    expect(await lockdeck.get(key)).toBeNull();
  });

  it('flags a foreign lock whose version stopped changing for leaseDuration as expired, and skips released items', async () => {
    const key = `aws-stuck-${randomId(4)}`;
    const rvn = await aws.acquireNew(key, 300);
    expect((await lockdeck.get(key))?.health).toBe('ok');
    await sleep(400);
    const info = await lockdeck.get(key);
    expect(info?.health).toBe('expired');
    expect(info!.meta?.versionUnchangedMs).toBeGreaterThanOrEqual(300);
    // The Java client's non-deleting release (isReleased only) hides it from the list.
    await ddb.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { key: { S: key } },
        UpdateExpression: 'SET #ir = :ir',
        ConditionExpression: 'attribute_exists(#pk) AND #rvn = :rvn AND #on = :on',
        ExpressionAttributeNames: { '#pk': 'key', '#ir': 'isReleased', '#rvn': 'recordVersionNumber', '#on': 'ownerName' },
        ExpressionAttributeValues: { ':ir': { S: '1' }, ':rvn': { S: rvn }, ':on': { S: aws.ownerName } },
      }),
    );
    expect((await lockdeck.list({ q: key })).length).toBe(0);
  });

  it('names locks value#sortKey on a sort-key table and prefixes the tables after the first', async () => {
    const h = await multi.acquire('orders#shard-1', { ttlMs: 5000 });
    const item = await getItem(sortTable, { key: { S: 'orders' }, sortKey: { S: 'shard-1' } });
    expect(item?.ownerName?.S).toBe(h.owner.id);
    const k2 = `plain-${randomId(4)}`;
    const h2 = await lockdeck.acquire(k2, { ttlMs: 5000 });
    const keys = (await multi.list()).map((l) => l.key);
    expect(keys).toContain('orders#shard-1');
    expect(keys).toContain(`${table}/${k2}`);
    expect((await multi.get(`${table}/${k2}`))?.fence).toBe(h2.fence);
    await expect(multi.acquire('no-sort-part', { ttlMs: 1000 })).rejects.toThrow(/partition#sort/);
    await h.release();
    await h2.release();
  });
});
