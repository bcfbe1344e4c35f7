/**
 * The registry: one backend module per store, chosen by the configuration's `type`.
 * Each backend lives in its own folder behind the LockBackend interface; nothing else
 * in the console or the scheduler knows which store it talks to.
 */
import type { LockBackend, RunStoreProvider } from '../locks/types';
import type { BackendConfig } from './config';
import { createDynamoDbBackend } from './dynamodb';
import { createEtcdBackend } from './etcd';
import { createRedisBackend } from './redis';
import { createSqliteBackend } from './sqlite';
import { createZooKeeperBackend } from './zookeeper';

export type { BackendConfig } from './config';
export { backendConfigSchema } from './config';

/** The embedded default when no configuration file exists (contract.md §1). */
export const DEFAULT_BACKENDS: readonly BackendConfig[] = Object.freeze([
  { id: 'local', type: 'sqlite', path: '.lockdeck/locks.db' },
]);

export function createBackend(config: BackendConfig): LockBackend & Partial<RunStoreProvider> {
  switch (config.type) {
    case 'redis':
      return createRedisBackend(config, config.discovery ? { discovery: config.discovery } : {});
    case 'sqlite':
      return createSqliteBackend(config);
    case 'zookeeper':
      return createZooKeeperBackend(config);
    case 'dynamodb':
      return createDynamoDbBackend(config);
    case 'etcd':
      return createEtcdBackend(config);
  }
}
