/**
 * Reproduction (found by the torture checker: zookeeper-ensemble × member-kill, liveness 17 s and
 * every waiter timing out): when `release()` of a ZooKeeper lock fails with CONNECTION_LOSS, the
 * holder's node is never deleted. The handle counts as released (`releasedByUs = true` in
 * lib/backends/zookeeper/index.ts `track()`), so `onDone` does not queue the removal, and the
 * session survives the blip: the lock stays held by nobody until that process exits.
 * Curator's answer is the guaranteed delete (retry in the background until it succeeds).
 *
 *   npx tsx torture/repro/zk-release-connection-loss.ts
 */
import { createZooKeeperBackend } from '../../lib/backends/zookeeper';
import { startZooKeeper } from '../../scripts/servers';
import { FaultProxy } from '../proxy';

const zk = await startZooKeeper();
const proxy = new FaultProxy('127.0.0.1', zk.port);
const port = await proxy.start();
const a = createZooKeeperBackend({ id: 'a', type: 'zookeeper', connect: `127.0.0.1:${port}`, roots: ['/repro'] }, { sessionTimeoutMs: 10_000, opTimeoutMs: 1000 });
const b = createZooKeeperBackend({ id: 'b', type: 'zookeeper', connect: zk.url, roots: ['/repro'] }, { sessionTimeoutMs: 10_000 });
const h = await a.acquire('job', { ttlMs: 30_000, autoRenew: false });
proxy.partition(); // the delete is held...
const released = h.release().then(() => 'ok', (err: Error) => err.message);
await new Promise((r) => setTimeout(r, 300));
proxy.reset(); // ...and lost with the connection (as when the ZooKeeper leader died)
proxy.heal();
console.log('release():', await released);
await new Promise((r) => setTimeout(r, 3000)); // reconnected, session alive
const other = await b.tryAcquire('job', { ttlMs: 5000 });
console.log(other ? 'ok: the lock is free again' : 'BUG: the lock is still held 3 s after the connection came back, by a node nobody owns');
await other?.release();
await Promise.all([a.close(), b.close()]);
await proxy.stop();
await zk.stop();
