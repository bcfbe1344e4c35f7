/**
 * A lock worker process for cross-process measurements. The bench forks it (node --import tsx)
 * and drives it over IPC: init with a WorkerSpec, then acquire / tryAcquire / release / stats.
 *
 * Timestamps are process.hrtime.bigint() in ms (CLOCK_MONOTONIC, shared by all processes of the
 * host): `t0` just before release() is called, `t1` just after acquire() resolved.
 *
 * Client-side counters: every ioredis command sent and pub/sub message received in this process
 * (prototype hooks, a few ns each), so the bench can count requests and wake-ups per process.
 */
import { Redis } from 'ioredis';

import type { LockBackend, LockHandle } from '../lib/locks/types';
import type RedlockClass from '../node_modules/redlock/dist/index';
import { loadFactory } from './lib/backends';
import type { Counters, Request, Response, WorkerEvent, WorkerSpec } from './lib/protocol';

function hr(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

const counters: Counters = { commands: 0, messages: 0 };
/** Called once on the next command reply (redlock: "my first attempt was refused"). */
let onNextReply: (() => void) | undefined;
/** While a release runs: when its first command was sent. */
let markSends = false;
let firstSendAt: number | undefined;
/** When the last pub/sub message arrived. */
let lastMessageAt = 0;

type Proto = {
  sendCommand(cmd: { promise?: Promise<unknown> }, stream?: unknown): unknown;
  emit(event: string | symbol, ...args: unknown[]): boolean;
};
const proto = Redis.prototype as unknown as Proto;
const origSend = proto.sendCommand;
proto.sendCommand = function (this: Proto, cmd, stream) {
  counters.commands++;
  if (markSends && firstSendAt === undefined) firstSendAt = hr();
  const hook = onNextReply;
  if (hook && cmd.promise) {
    const fire = () => {
      if (onNextReply === hook) {
        onNextReply = undefined;
        hook();
      }
    };
    cmd.promise.then(fire, fire);
  }
  return origSend.call(this, cmd, stream);
};
const origEmit = proto.emit;
proto.emit = function (this: Proto, event, ...args) {
  if (event === 'message' || event === 'pmessage') {
    lastMessageAt = hr();
    counters.messages++;
  }
  return origEmit.call(this, event, ...args);
};

/**
 * What the worker needs from a lock client. `slot` (lockdeck only, default 0) lets one process
 * hold or wait for several acquisitions at once: the Redis section's N-waiter and throughput
 * figures put up to 32 waiters in each of a few processes instead of starting 128 processes.
 */
interface Locker {
  acquire(req: { name: string; ttlMs: number; waitMs: number; autoRenew?: boolean; slot?: number }): Promise<string | null>;
  tryAcquire(req: { name: string; ttlMs: number; autoRenew?: boolean; slot?: number }): Promise<string | null | false>;
  release(slot?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Requests beyond protocol.ts (used by bench/redis.ts only; extra fields ride along in IPC):
 * `slot` on acquire/tryAcquire/release, and `contend` — loop acquire → release (critical section
 * 0) on one name for durationMs, returning each hold's [fence, acquired, releasing] times so the
 * bench can count throughput and check that no two holds overlap.
 */
export interface ContendRequest {
  id: number;
  op: 'contend';
  name: string;
  ttlMs: number;
  durationMs: number;
  slot?: number;
}

async function lockdeckLocker(spec: Extract<WorkerSpec, { kind: 'lockdeck' }>): Promise<Locker> {
  const loaded = await loadFactory(spec.backend);
  if ('reason' in loaded) throw new Error(loaded.reason);
  const backend: LockBackend = loaded.factory(spec.config, spec.options);
  const held = new Map<number, LockHandle>();
  const claim = (slot: number) => {
    if (held.has(slot)) throw new Error(`already holding (slot ${slot})`);
  };
  return {
    async acquire({ name, ttlMs, waitMs, autoRenew, slot = 0 }) {
      claim(slot);
      const h = await backend.acquire(name, { ttlMs, waitMs, autoRenew });
      held.set(slot, h);
      return h.fence;
    },
    async tryAcquire({ name, ttlMs, autoRenew, slot = 0 }) {
      claim(slot);
      const h = await backend.tryAcquire(name, { ttlMs, autoRenew });
      if (!h) return false;
      held.set(slot, h);
      return h.fence;
    },
    async release(slot = 0) {
      const h = held.get(slot);
      held.delete(slot);
      if (!h) throw new Error(`not holding (slot ${slot})`);
      await h.release();
    },
    async close() {
      await Promise.allSettled([...held.values()].map((h) => h.release()));
      held.clear();
      await backend.close();
    },
  };
}

async function redlockLocker(spec: Extract<WorkerSpec, { kind: 'redlock' }>): Promise<Locker> {
  // redlock's package.json "exports" hides its types from TS's bundler resolution (TS7016):
  // take the types by path and load the module by a computed specifier.
  const specifier = 'redlock';
  const { default: Redlock } = (await import(specifier)) as { default: typeof RedlockClass };
  const client = new Redis(spec.url, { maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  const redlock = new Redlock([client]); // defaults: retryCount 10, retryDelay 200, retryJitter 100
  redlock.on('error', () => undefined); // refused attempts are reported here; they are expected
  type RLock = Awaited<ReturnType<typeof redlock.acquire>>;
  let held: RLock | undefined;
  return {
    async acquire({ name, ttlMs }) {
      if (held) throw new Error('already holding');
      held = await redlock.acquire([name], ttlMs);
      return null;
    },
    async tryAcquire({ name, ttlMs }) {
      if (held) throw new Error('already holding');
      try {
        held = await redlock.acquire([name], ttlMs, { retryCount: 0 });
        return null;
      } catch {
        return false;
      }
    },
    async release() {
      const l = held;
      held = undefined;
      if (!l) throw new Error('not holding');
      await l.release();
    },
    async close() {
      await held?.release().catch(() => undefined);
      client.disconnect();
    },
  };
}

async function rawPubsubLocker(spec: Extract<WorkerSpec, { kind: 'raw-pubsub' }>): Promise<Locker> {
  const cmd = new Redis(spec.url, { maxRetriesPerRequest: 1 });
  const sub = new Redis(spec.url, { maxRetriesPerRequest: 1 });
  cmd.on('error', () => undefined);
  sub.on('error', () => undefined);
  const LUA = "redis.call('DEL', KEYS[1]) return redis.call('PUBLISH', KEYS[2], ARGV[1])";
  let wake: (() => void) | undefined;
  let name: string | undefined;
  sub.on('message', () => wake?.());
  const chan = (n: string) => `bench:raw:{${n}}`;
  return {
    async acquire(req) {
      const granted = new Promise<void>((resolve) => (wake = resolve));
      await sub.subscribe(chan(req.name)); // its reply is the "blocked" notice
      await granted;
      wake = undefined;
      name = req.name;
      void sub.unsubscribe(chan(req.name)).catch(() => undefined); // after t1: not timed
      return null;
    },
    async tryAcquire(req) {
      name = req.name;
      return null;
    },
    async release() {
      const n = name;
      name = undefined;
      if (!n) throw new Error('not holding');
      const receivers = Number(
        spec.via === 'publish' ? await cmd.publish(chan(n), 'g') : await cmd.eval(LUA, 2, `${chan(n)}:lock`, chan(n), 'g'),
      );
      if (receivers !== 1) throw new Error(`raw handoff reached ${receivers} subscribers, expected 1`);
    },
    async close() {
      sub.disconnect();
      cmd.disconnect();
    },
  };
}

let locker: Locker | undefined;

function send(msg: Response | WorkerEvent): void {
  process.send?.(msg);
}

async function handle(req: Request): Promise<Response> {
  switch (req.op) {
    case 'init':
      if (locker) throw new Error('already initialised');
      locker =
        req.spec.kind === 'redlock'
          ? await redlockLocker(req.spec)
          : req.spec.kind === 'raw-pubsub'
            ? await rawPubsubLocker(req.spec)
            : await lockdeckLocker(req.spec);
      return { id: req.id, ok: true, pid: process.pid };
    case 'acquire': {
      const l = need();
      if (req.notifyBlocked) onNextReply = () => send({ id: req.id, event: 'blocked' });
      const started = hr();
      try {
        const fence = await l.acquire(req);
        const t1 = hr();
        const msgAt = lastMessageAt > started ? lastMessageAt : undefined;
        return { id: req.id, ok: true, t1, msgAt, fence };
      } finally {
        onNextReply = undefined;
      }
    }
    case 'tryAcquire': {
      const r = await need().tryAcquire(req);
      return { id: req.id, ok: true, got: r !== false, fence: r === false ? null : r };
    }
    case 'release': {
      const l = need();
      if (req.pauseMs > 0) await new Promise((r) => setTimeout(r, req.pauseMs));
      firstSendAt = undefined;
      markSends = true;
      const t0 = hr();
      try {
        await l.release((req as { slot?: number }).slot);
      } finally {
        markSends = false;
      }
      return { id: req.id, ok: true, t0, sentAt: firstSendAt };
    }
    case 'stats':
      return { id: req.id, ok: true, counters: { ...counters } };
    case 'close':
      await locker?.close();
      locker = undefined;
      setTimeout(() => process.exit(0), 10).unref();
      return { id: req.id, ok: true };
  }
}

function need(): Locker {
  if (!locker) throw new Error('not initialised');
  return locker;
}

if (!process.send) {
  console.error('bench/worker.ts is started by bench/run.ts over IPC');
  process.exit(2);
}
async function contend(req: ContendRequest): Promise<Response & { spans: [string | null, number, number][] }> {
  const l = need();
  const spans: [string | null, number, number][] = [];
  const end = hr() + req.durationMs;
  while (hr() < end) {
    const fence = await l.acquire({ name: req.name, ttlMs: req.ttlMs, waitMs: 30_000, autoRenew: false, slot: req.slot });
    const acquiredAt = hr();
    const releasingAt = hr();
    await l.release(req.slot);
    spans.push([fence, acquiredAt, releasingAt]);
  }
  return { id: req.id, ok: true, spans };
}

process.on('message', (req: Request | ContendRequest) => {
  (req.op === 'contend' ? contend(req) : handle(req)).then(send, (err: unknown) =>
    send({ id: req.id, ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }),
  );
});
// The parent going away (crash, Ctrl-C) must not leave us behind.
process.on('disconnect', () => process.exit(0));
