/**
 * Reproduction (reasoned from lib/backends/redis/base.ts, confirmed here): a lock handed to a
 * waiter by the server (release → grant published on the waiter's channel) starts the waiter's
 * local lease clock when the *message arrives* (`granted.at = performance.now()`), not at a time
 * known to precede the grant. If the message is delayed by D, the waiter believes in its lease D
 * longer than the server keeps it, and the drift allowance (1 % + 2 ms) does not cover D.
 *
 *   npx tsx torture/repro/late-handoff.ts
 *
 * Here the handoff lease is 200 ms and the waiter's link delays every byte 300 ms: the server's
 * lease is over before the waiter even hears of it, yet acquire() resolves with held=true, and a
 * third client already holds the lock. A safe lower bound of the grant time is when the waiter
 * sent its last queueing request (the grant cannot precede it), or the waiter can renew once
 * before returning.
 */
import { createRedisBackend } from '../../lib/backends/redis';
import { startRedis } from '../../scripts/servers';
import { FaultProxy } from '../proxy';

const server = await startRedis();
const proxy = new FaultProxy('127.0.0.1', server.port);
const port = await proxy.start();
const opts = { handoffTtlMs: 200, recheckMs: 5000, commandTimeoutMs: 5000 };
const holder = createRedisBackend({ id: 'h', type: 'redis', url: server.url }, opts);
const waiter = createRedisBackend({ id: 'w', type: 'redis', url: `redis://127.0.0.1:${port}` }, opts);
const third = createRedisBackend({ id: 't', type: 'redis', url: server.url }, opts);
await Promise.all([holder.ping(), waiter.ping(), third.ping()]);

const first = await holder.acquire('late-handoff', { ttlMs: 10_000 });
const waiting = waiter.acquire('late-handoff', { ttlMs: 10_000, waitMs: 10_000 });
await new Promise((r) => setTimeout(r, 300)); // the waiter is queued
proxy.setDelay(300);
await first.release(); // the server hands the lock to the waiter (200 ms lease) and publishes
const other = await third.acquire('late-handoff', { ttlMs: 10_000, waitMs: 5000 }); // after the 200 ms lease
const h = await waiting;
const atResolve = { held: h.held, aborted: h.signal.aborted };
console.log(`third holds fence ${other.fence} (held=${other.held}); waiter's acquire() resolved with fence ${h.fence}, held=${atResolve.held}, aborted=${atResolve.aborted}`);
const t0 = performance.now();
await new Promise<void>((r) => (h.signal.aborted ? r() : h.signal.addEventListener('abort', () => r())));
console.log(`the waiter learned it had lost the lock ${(performance.now() - t0).toFixed(0)} ms after acquire() returned`);
console.log(atResolve.held && other.held ? 'BUG: two holders told they hold the lock' : 'ok');
proxy.setDelay(0);
await other.release();
await Promise.all([holder.close(), waiter.close(), third.close()]);
await proxy.stop();
await server.stop();
