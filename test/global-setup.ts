/**
 * Starts the real servers the integration tests use, once per `vitest run`, on free loopback
 * ports in temp dirs, and stops them afterwards. Tests read the addresses with `inject(...)`.
 */
import type { TestProject } from 'vitest/node';

import { startEtcd } from '../scripts/etcd-server';
import { startRedis, startZooKeeper, type RunningServer } from '../scripts/servers';
import { startDynalite } from '../scripts/dynalite-server';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    /** Three independent masters for Redlock. */
    redlockUrls: string[];
    /** A standalone ZooKeeper server's connect string (host:port). */
    zookeeperConnect: string;
    /** A dynalite (DynamoDB emulator) endpoint, http://127.0.0.1:port; tests create their own tables. */
    dynamodbEndpoint: string;
    /** One etcd member's client URLs (http://127.0.0.1:port). */
    etcdEndpoints: string[];
  }
}

let servers: RunningServer[] = [];

export async function setup(project: TestProject): Promise<void> {
  // ZooKeeper boots in about a second (one JVM): in parallel with the Redis servers.
  const zkStarting = startZooKeeper();
  const dynaliteStarting = startDynalite();
  const etcdStarting = startEtcd();
  const started = await Promise.all([startRedis(), startRedis(), startRedis(), startRedis()]);
  servers.push(...started);
  project.provide('redisUrl', started[0]!.url);
  project.provide('redlockUrls', started.slice(1).map((s) => s.url));
  const zk = await zkStarting;
  servers.push(zk);
  project.provide('zookeeperConnect', zk.url);
  const dynalite = await dynaliteStarting;
  servers.push(dynalite);
  project.provide('dynamodbEndpoint', dynalite.url);
  const etcd = await etcdStarting;
  servers.push(etcd);
  project.provide('etcdEndpoints', etcd.endpoints);
}

export async function teardown(): Promise<void> {
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
}
