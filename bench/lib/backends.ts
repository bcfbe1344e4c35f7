/**
 * Loads a backend factory by type, so sections (and worker processes) can use backends that may
 * not exist yet: a missing or unfinished module gives a reason instead of a crash.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { LockBackend } from '../../lib/locks/types';

export type BackendFactory = (config: Record<string, unknown>, options?: Record<string, unknown>) => LockBackend;

const MODULES: Record<string, { file: string; factory: string }> = {
  redis: { file: '../../lib/backends/redis/index.ts', factory: 'createRedisBackend' },
  sqlite: { file: '../../lib/backends/sqlite/index.ts', factory: 'createSqliteBackend' },
  zookeeper: { file: '../../lib/backends/zookeeper/index.ts', factory: 'createZooKeeperBackend' },
  etcd: { file: '../../lib/backends/etcd/index.ts', factory: 'createEtcdBackend' },
};

export async function loadFactory(type: string): Promise<{ factory: BackendFactory } | { reason: string }> {
  const m = MODULES[type];
  if (!m) return { reason: `no module known for backend type "${type}"` };
  const url = new URL(m.file, import.meta.url);
  const rel = fileURLToPath(url).replace(/^.*?\/lib\//, 'lib/');
  if (!existsSync(url)) return { reason: `${rel} does not exist yet` };
  try {
    // A computed specifier: tsc does not resolve it, so a backend still being written cannot break
    // the typecheck of the bench; tsx loads it at run time.
    const mod = (await import(url.href)) as Record<string, unknown>;
    const f = mod[m.factory];
    if (typeof f !== 'function') return { reason: `${rel} does not export ${m.factory}() yet` };
    return { factory: f as BackendFactory };
  } catch (err) {
    return { reason: `${rel} failed to load: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}` };
  }
}
