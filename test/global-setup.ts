/**
 * Starts the real servers the integration tests use, once per `vitest run`, on free loopback
 * ports in temp dirs, and stops them afterwards. Tests read the addresses with `inject(...)`.
 */
import type { TestProject } from 'vitest/node';

import { startRedis, type RunningServer } from '../scripts/servers';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let servers: RunningServer[] = [];

export async function setup(project: TestProject): Promise<void> {
  const redis = await startRedis();
  servers.push(redis);
  project.provide('redisUrl', redis.url);
}

export async function teardown(): Promise<void> {
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
}
