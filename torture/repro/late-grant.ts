/**
 * Reproduction (found by the torture checker under `--faults delay`): when the reply that grants a
 * Redis lock arrives later than the lease lasts, `acquire()` still resolves with a handle, although
 * the lease has run out and another client already holds the lock. The handle's signal aborts
 * ('expired') right after, but for a moment two callers have been told they hold the lock.
 *
 *   npx tsx torture/repro/late-grant.ts
 *
 * Expected: acquire() waits on (or throws) instead of returning a lock whose lease already ran out.
 */
import { createRedisBackend } from '../../lib/backends/redis';
import { startRedis } from '../../scripts/servers';
import { FaultProxy } from '../proxy';

const server = await startRedis();
const proxy = new FaultProxy('127.0.0.1', server.port);
const port = await proxy.start();
const slow = createRedisBackend({ id: 'slow', type: 'redis', url: `redis://127.0.0.1:${port}` }, { commandTimeoutMs: 5000 });
const fast = createRedisBackend({ id: 'fast', type: 'redis', url: server.url });
await slow.ping();
await fast.ping();
proxy.setDelay(300); // each way: the grant reaches the slow client ~600 ms after it was made
const slowAcquire = slow.acquire('late-grant', { ttlMs: 200 });
await new Promise((r) => setTimeout(r, 450)); // the slow client's lease (200 ms) is over on the server
const other = await fast.acquire('late-grant', { ttlMs: 5000, waitMs: 2000 });
const h = await slowAcquire;
const atResolve = { held: h.held, aborted: h.signal.aborted };
console.log(`fast holds fence ${other.fence} (held=${other.held}); slow's acquire() resolved with fence ${h.fence}, held=${h.held}, aborted=${h.signal.aborted}`);
await new Promise((r) => setTimeout(r, 5));
console.log(`5 ms later: slow held=${h.held}, aborted=${h.signal.aborted} (${String((h.signal.reason as Error | undefined)?.message)})`);
console.log(atResolve.held && !atResolve.aborted && other.held ? 'BUG: acquire() returned a lock whose lease had already run out' : 'ok');
await other.release();
await Promise.all([slow.close(), fast.close()]);
await proxy.stop();
await server.stop();
