/**
 * The backend part of the configuration file (contract.md §1), as zod schemas, so that an invalid
 * file is refused at start-up with the field that is wrong. Backends are created only from this
 * server-side configuration, never from a request.
 */
import { z } from 'zod';

const id = z.string().regex(/^[a-z0-9-]{1,40}$/, 'must match [a-z0-9-]{1,40}');
const redisUrl = z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL');

export const redisBackendSchema = z
  .object({
    id,
    type: z.literal('redis'),
    /** One server (or a Cluster seed / Sentinel per the options below). */
    url: redisUrl.optional(),
    /** Independent masters: Redlock quorum. */
    urls: z.array(redisUrl).min(2).max(9).optional(),
    /** Treat `url` as a seed of a Redis Cluster. */
    cluster: z.boolean().optional(),
    /** Sentinel: the master set's name and the sentinels to ask. */
    sentinel: z.object({ name: z.string().min(1), sentinels: z.array(z.string().regex(/^[^:]+:\d+$/)).min(1) }).optional(),
    /** Key globs where foreign locks may live; validated to a safe subset of glob syntax. */
    match: z.array(z.string().min(1).max(200)).max(50).optional(),
    /** Prefix of lockdeck's own keys (default "lockdeck"). */
    prefix: z.string().regex(/^[A-Za-z0-9_.:-]{1,40}$/).optional(),
    password: z.string().optional(),
    /**
     * Background discovery of foreign locks (lib/backends/redis/discovery.ts): shortest pause
     * between keyspace passes (ms), share of a pass spent waiting on Redis, SCAN COUNT, how long
     * the first listing waits for the first pass.
     */
    discovery: z
      .object({
        intervalMs: z.number().int().min(100).max(3_600_000).optional(),
        duty: z.number().gt(0).max(1).optional(),
        scanCount: z.number().int().min(10).max(10_000).optional(),
        firstWaitMs: z.number().int().min(0).max(60_000).optional(),
      })
      .strict()
      .optional(),
    /**
     * Replicated acquire (Redisson's `checkLockSyncedSlaves`): after every grant, renewal and
     * release, `WAIT waitReplicas waitTimeoutMs` on the same connection; an acquire that fewer
     * replicas acknowledged gives the lock back and fails (ReplicationError). Off by default.
     * Not with `urls` (Redlock masters are independent, without replicas to wait for).
     */
    waitReplicas: z.number().int().min(1).max(16).optional(),
    /** How long WAIT may block (default 1000 ms, as Redisson's slavesSyncTimeout); below the command timeout. */
    waitTimeoutMs: z.number().int().min(1).max(60_000).optional(),
  })
  .strict()
  .refine((b) => [b.url, b.urls, b.sentinel].filter(Boolean).length === 1, {
    message: 'give exactly one of url, urls (Redlock masters) or sentinel',
  })
  .refine((b) => !(b.urls && b.waitReplicas), {
    message: 'waitReplicas does not apply to Redlock (urls): its masters are independent and have no replicas to wait for',
    path: ['waitReplicas'],
  })
  .refine((b) => b.waitTimeoutMs === undefined || b.waitReplicas !== undefined, {
    message: 'waitTimeoutMs needs waitReplicas',
    path: ['waitTimeoutMs'],
  });

export const sqliteBackendSchema = z
  .object({
    id,
    type: z.literal('sqlite'),
    path: z.string().min(1),
  })
  .strict();

export const zookeeperBackendSchema = z
  .object({
    id,
    type: z.literal('zookeeper'),
    connect: z.string().min(1),
    roots: z.array(z.string().startsWith('/')).min(1),
    /**
     * Session timeout asked of the server (default 10000, as kazoo; the server clamps it to
     * [2, 20] × tickTime). A holder that dies keeps its locks this long.
     */
    sessionTimeoutMs: z.number().int().min(1000).max(600_000).optional(),
  })
  .strict();

export const etcdBackendSchema = z
  .object({ id, type: z.literal('etcd'), endpoints: z.array(z.string().url()).min(1), prefixes: z.array(z.string().min(1)).min(1) })
  .strict();

export const dynamodbBackendSchema = z
  .object({
    id,
    type: z.literal('dynamodb'),
    endpoint: z.string().url().optional(),
    region: z.string().min(1),
    tables: z.array(z.string().min(3).max(255)).min(1),
    /** Waiters' poll period in ms (default 100; the AWS lock client polls every 1000). */
    pollMs: z.number().int().min(10).max(60_000).optional(),
    /** The console's Scan period for watch() in ms (default 1000). */
    watchPollMs: z.number().int().min(100).max(600_000).optional(),
  })
  .strict();

export const backendConfigSchema = z.discriminatedUnion('type', [
  redisBackendSchema,
  sqliteBackendSchema,
  zookeeperBackendSchema,
  etcdBackendSchema,
  dynamodbBackendSchema,
]);

export type BackendConfig = z.infer<typeof backendConfigSchema>;
export type RedisBackendConfig = z.infer<typeof redisBackendSchema>;
export type SqliteBackendConfig = z.infer<typeof sqliteBackendSchema>;
