/**
 * The registry: one backend module per store, chosen by the configuration's `type`.
 * Later backends (ZooKeeper, etcd, DynamoDB) plug in here without changes elsewhere.
 */
import { NotSupportedError } from '../locks/errors';
import type { LockBackend, RunStoreProvider } from '../locks/types';
import type { BackendConfig } from './config';
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
      return createRedisBackend(config);
    case 'sqlite':
      return createSqliteBackend(config);
    case 'zookeeper':
      return createZooKeeperBackend(config);
    case 'etcd':
    case 'dynamodb':
      throw new NotSupportedError(`backend "${config.id}": type "${config.type}" is not available yet`);
  }
}
