/**
 * DynamoDB section, on a throwaway dynalite (scripts/dynalite-server.ts) started here. dynalite is
 * an emulator: absolute latencies say little about DynamoDB, so every figure is a ratio against a
 * baseline measured in the same run, or a request count (counted in the client by SDK middleware,
 * DynamoDbBackendOptions.onRequest, one call per HTTP attempt).
 *
 *  - baseline: a consistent GetItem round trip;
 *  - ours: uncontended acquire+release (tryAcquire + release, autoRenew false) and the requests
 *    each takes (target: 1 request per acquire, perf-reliability-anchors P5);
 *  - handoff after a voluntary release, the waiter on its own client WITHOUT in-process wake-ups
 *    (localWakeups: false), i.e. polling exactly as a waiter in another process does: wait from
 *    release to acquisition, and the requests it took;
 *  - the AWS lock client's waiting, request for request (AmazonDynamoDBLockClient.acquireLock:
 *    GetItem, then sleep refreshPeriod = DEFAULT_BUFFER_MS 1000 ms; on a free lock PutItem with
 *    attribute_not_exists(#pk)), released by its DeleteItem under the owner+RVN condition.
 *    Target: mean wait ≥ 4× lower than that client's (P5).
 *
 * Release happens after a random pause spanning one poll period of the waiter, so the release
 * falls at a uniformly random phase of its polling, as it would in production.
 */
import { randomUUID } from 'node:crypto';

import { DeleteItemCommand, GetItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';

import { createDynamoDbBackend, createLockTable, makeDynamoDbClient } from '../lib/backends/dynamodb/index';
import type { LockBackend } from '../lib/locks/types';
import { startDynalite } from '../scripts/dynalite-server';
import { packageVersion, scaled, type BenchContext } from './lib/context';
import { atMost, ms, type Row } from './lib/report';
import { measure, mean, median, pairedRatio, sleep, summarize, uniform } from './lib/stats';

const REGION = 'us-east-1';
const TABLE = 'bench-locks';
const AWS_REFRESH_MS = 1000; // AmazonDynamoDBLockClient DEFAULT_BUFFER_MS

export async function dynamodbSection(ctx: BenchContext): Promise<void> {
  const S = 'dynamodb';
  const server = await startDynalite();
  ctx.defer(() => server.stop());
  ctx.log(`dynalite on ${server.url} (pid ${server.process.pid})`);
  ctx.versions.dynalite = packageVersion('dynalite');
  ctx.versions['@aws-sdk/client-dynamodb'] = packageVersion('@aws-sdk/client-dynamodb');
  const endpoint = server.url;
  const config = { id: 'bench-ddb', type: 'dynamodb' as const, endpoint, region: REGION, tables: [TABLE] };

  const raw = makeDynamoDbClient({ endpoint, region: REGION });
  ctx.defer(() => raw.destroy());
  await createLockTable(raw, TABLE);

  const counts = { a: 0, b: 0 };
  const a = createDynamoDbBackend(config, { onRequest: () => counts.a++ });
  const b = createDynamoDbBackend(config, { onRequest: () => counts.b++, localWakeups: false });
  const inspector = createDynamoDbBackend(config);
  ctx.defer(() => Promise.all([a.close(), b.close(), inspector.close()]));
  await a.ping();
  await b.ping();

  // ---------------------------------------------------------- GetItem vs acquire+release, in rounds
  const ROUNDS = 5;
  const n = scaled(ctx, 200, 30);
  const getItem = () => raw.send(new GetItemCommand({ TableName: TABLE, Key: { key: { S: 'bench/get' } }, ConsistentRead: true }));
  let acquireReqs = 0;
  let releaseReqs = 0;
  let cycles = 0;
  const cycle = async () => {
    const c0 = counts.a;
    const h = await a.tryAcquire('bench/cycle', { ttlMs: 30_000, autoRenew: false });
    if (!h) throw new Error('bench/cycle unexpectedly held');
    const c1 = counts.a;
    await h.release();
    acquireReqs += c1 - c0;
    releaseReqs += counts.a - c1;
    cycles++;
  };
  const gets: number[][] = [];
  const ours: number[][] = [];
  for (let r = -1; r < ROUNDS; r++) {
    const first = r === -1;
    const g = await measure(getItem, { warmup: first ? 100 : 10, samples: n, maxMs: 4000 });
    const c = await measure(cycle, { warmup: first ? 50 : 5, samples: n, maxMs: 4000 });
    if (first) {
      acquireReqs = releaseReqs = cycles = 0;
      continue;
    }
    gets.push(g);
    ours.push(c);
    ctx.log(`round ${r + 1}/${ROUNDS}: GetItem ${ms(median(g))}, acquire+release ${ms(median(c))}`);
  }
  const allGet = summarize(gets.flat());
  const allOurs = summarize(ours.flat());
  const oursVsGet = pairedRatio(ours.map(median), gets.map(median));

  // ---------------------------------------------------------- handoff: ours (polling) vs the AWS client's
  const hoN = scaled(ctx, 30, 8);
  const HO = 'bench/handoff';
  const waits: number[] = [];
  const waiterReqs: number[] = [];
  let blockedReqs = 0;
  let blockedMs = 0;
  for (let i = 0; i < hoN + 2; i++) {
    const holder = await a.acquire(HO, { ttlMs: 30_000, waitMs: 5000 });
    const tStart = performance.now();
    const cStart = counts.b;
    const waiting = b.acquire(HO, { ttlMs: 30_000, waitMs: 20_000 });
    await waitForWaiter(inspector, HO);
    await sleep(uniform(5, 5 + 1.3 * b_pollMs(b)));
    const c0 = counts.b;
    const t0 = performance.now();
    void cStart;
    void tStart;
    await holder.release();
    const h = await waiting;
    const t1 = performance.now();
    if (i >= 2) {
      waits.push(t1 - t0);
      waiterReqs.push(counts.b - c0);
    }
    await h.release();
  }
  const ho = summarize(waits);

  // Steady-state request rate of one blocked waiter (joining costs excluded): 2 s of waiting.
  {
    const holder = await a.acquire(HO, { ttlMs: 30_000, waitMs: 5000 });
    const waiting = b.acquire(HO, { ttlMs: 30_000, waitMs: 20_000 });
    await waitForWaiter(inspector, HO);
    await sleep(200);
    const c0 = counts.b;
    const t0 = performance.now();
    await sleep(2000);
    blockedReqs = counts.b - c0;
    blockedMs = performance.now() - t0;
    await holder.release();
    await (await waiting).release();
  }

  const awsWaits: number[] = [];
  const awsN = scaled(ctx, 20, 6);
  const owner = `bench-host${randomUUID()}`;
  for (let i = 0; i < awsN + 1; i++) {
    const rvn = await awsAcquireNew(raw, HO + '-aws', owner);
    if (!rvn) throw new Error('aws-style holder could not acquire');
    let acquiredAt = 0;
    const waiter = awsStyleWaiter(raw, HO + '-aws', () => (acquiredAt = performance.now()));
    await sleep(uniform(5, 5 + AWS_REFRESH_MS));
    const t0 = performance.now();
    await raw.send(
      new DeleteItemCommand({
        TableName: TABLE,
        Key: { key: { S: HO + '-aws' } },
        ConditionExpression: 'attribute_exists(#pk) AND #rvn = :rvn AND #on = :on',
        ExpressionAttributeNames: { '#pk': 'key', '#rvn': 'recordVersionNumber', '#on': 'ownerName' },
        ExpressionAttributeValues: { ':rvn': { S: rvn }, ':on': { S: owner } },
      }),
    );
    const waiterRvn = await waiter;
    if (i >= 1) awsWaits.push(acquiredAt - t0);
    await raw.send(new DeleteItemCommand({ TableName: TABLE, Key: { key: { S: HO + '-aws' } }, ConditionExpression: 'recordVersionNumber = :r', ExpressionAttributeValues: { ':r': { S: waiterRvn } } }));
  }
  const aws = summarize(awsWaits);
  const lessWaiting = aws.mean / ho.mean;

  // ---------------------------------------------------------- rows
  const getLabel = `GetItem p50 ${ms(allGet.p50)}`;
  const rows: Row[] = [
    { section: S, figure: 'GetItem round trip p50 (dynalite)', value: allGet.p50, unit: 'ms', baseline: '—', ratio: null, target: '—', verdict: 'baseline', note: `consistent read, n=${allGet.n}, p99 ${ms(allGet.p99)}` },
    {
      section: S, figure: 'acquire+release p50 vs GetItem', value: allOurs.p50, unit: 'ms', baseline: getLabel,
      ratio: oursVsGet.median, ratioSpread: [oursVsGet.min, oursVsGet.max], target: '—', verdict: 'info',
      note: `tryAcquire + release (2 conditional UpdateItems), autoRenew false, n=${allOurs.n}, p99 ${ms(allOurs.p99)}`,
    },
    { section: S, figure: 'requests per uncontended acquire', value: acquireReqs / cycles, unit: 'req', baseline: '—', ratio: null, target: '≤ 1', verdict: atMost(acquireReqs / cycles, 1), note: `release: ${(releaseReqs / cycles).toFixed(2)} req` },
    {
      section: S, figure: 'handoff wait mean (polling waiter)', value: ho.mean, unit: 'ms', baseline: getLabel, ratio: ho.mean / allGet.p50, target: '—', verdict: 'info',
      note: `release → acquired, waiter without in-process wake-ups (as in another process), poll ${b_pollMs(b)} ms ±30 %, n=${ho.n}, p50 ${ms(ho.p50)}, p99 ${ms(ho.p99)}`,
    },
    {
      section: S, figure: 'waiter requests per handoff (after the release)', value: mean(waiterReqs), unit: 'req', baseline: '—', ratio: null, target: '≤ 2', verdict: atMost(mean(waiterReqs), 2),
      note: `plus the holder's 1 release request; max ${Math.max(...waiterReqs)}`,
    },
    { section: S, figure: 'waiter requests per second while blocked', value: blockedReqs / (blockedMs / 1000), unit: 'req/s', baseline: '—', ratio: null, target: '—', verdict: 'info', note: `steady state over ${(blockedMs / 1000).toFixed(1)} s: GetItem polls + refreshing its waiter entry every 3 s` },
    { section: S, figure: 'AWS lock client handoff wait mean (1 s poll)', value: aws.mean, unit: 'ms', baseline: getLabel, ratio: aws.mean / allGet.p50, target: '—', verdict: 'baseline', note: `its requests re-enacted: GetItem every ${AWS_REFRESH_MS} ms, PutItem attribute_not_exists; n=${aws.n}, p50 ${ms(aws.p50)}` },
    { section: S, figure: 'less waiting than the AWS lock client', value: lessWaiting, unit: '×', baseline: `AWS mean ${ms(aws.mean)}`, ratio: null, target: '≥ 4×', verdict: lessWaiting >= 4 ? 'pass' : 'FAIL' },
  ];
  ctx.rows.push(...rows);
  ctx.details.dynamodb = {
    getItem: allGet, acquireRelease: allOurs, oursVsGet, requestsPerAcquire: acquireReqs / cycles, requestsPerRelease: releaseReqs / cycles,
    handoff: ho, waiterRequestsPerHandoff: waiterReqs, blockedRequestsPerSecond: blockedReqs / (blockedMs / 1000), awsHandoff: aws, lessWaiting,
  };
}

function b_pollMs(b: LockBackend): number {
  return (b as unknown as { pollMs: number }).pollMs;
}

async function waitForWaiter(inspector: LockBackend, key: string): Promise<void> {
  const deadline = performance.now() + 5000;
  while (((await inspector.get(key))?.waiters.length ?? 0) < 1) {
    if (performance.now() > deadline) throw new Error(`no waiter recorded on ${key}`);
    await sleep(5);
  }
}

/** AmazonDynamoDBLockClient.upsertAndMonitorNewLock's PutItem. Returns the RVN, or null if taken. */
async function awsAcquireNew(ddb: DynamoDBClient, key: string, owner: string): Promise<string | null> {
  const rvn = randomUUID();
  try {
    await ddb.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: { key: { S: key }, ownerName: { S: owner }, leaseDuration: { S: '20000' }, recordVersionNumber: { S: rvn } },
        ConditionExpression: 'attribute_not_exists(#pk)',
        ExpressionAttributeNames: { '#pk': 'key' },
      }),
    );
    return rvn;
  } catch (err) {
    if ((err as { name?: string }).name === 'ConditionalCheckFailedException') return null;
    throw err;
  }
}

/** The Java client's acquireLock loop on a held lock: GetItem, sleep refreshPeriod, until free. */
async function awsStyleWaiter(ddb: DynamoDBClient, key: string, onAcquired: () => void): Promise<string> {
  const owner = `bench-waiter${randomUUID()}`;
  for (;;) {
    const r = await ddb.send(new GetItemCommand({ TableName: TABLE, Key: { key: { S: key } }, ConsistentRead: true }));
    if (!r.Item) {
      const rvn = await awsAcquireNew(ddb, key, owner);
      if (rvn) {
        onAcquired();
        return rvn;
      }
    }
    await sleep(AWS_REFRESH_MS);
  }
}
