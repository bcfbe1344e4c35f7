/** Messages between the bench (parent) and its lock worker processes (bench/worker.ts). */

/** Which lock client a worker runs. Configs are plain JSON, so they cross the IPC channel. */
export type WorkerSpec =
  | { kind: 'lockdeck'; backend: 'redis' | 'sqlite' | 'zookeeper' | 'etcd'; config: Record<string, unknown>; options?: Record<string, unknown> }
  | { kind: 'redlock'; url: string }
  /**
   * The push floor, no lock at all: "acquire" subscribes to the name's channel and resolves on
   * the first message; "release" sends one PUBLISH there (or one EVAL doing DEL + PUBLISH). What
   * any push-based handoff costs on this box with the same harness: 0.5 RTT + waking the waiter.
   */
  | { kind: 'raw-pubsub'; url: string; via: 'publish' | 'eval' };

export interface LockRequestBase {
  name: string;
  ttlMs: number;
  /** lockdeck only: renew at ttl/3 and top a handed-off lease up at once (library default true). */
  autoRenew?: boolean;
}

export type Request =
  | { id: number; op: 'init'; spec: WorkerSpec }
  | ({ id: number; op: 'acquire'; waitMs: number; /** Send a 'blocked' event after the first reply. */ notifyBlocked?: boolean } & LockRequestBase)
  | ({ id: number; op: 'tryAcquire' } & LockRequestBase)
  | { id: number; op: 'release'; pauseMs: number }
  | { id: number; op: 'stats' }
  | { id: number; op: 'close' };

/** Per-process client-side counters (ioredis only; zeros for other stores). */
export interface Counters {
  /** Commands handed to ioredis (each is one request to the server). */
  commands: number;
  /** Pub/sub messages received. */
  messages: number;
}

export type Response =
  | {
      id: number;
      ok: true;
      /** release: just before release() was called. */
      t0?: number;
      /** acquire: just after acquire() resolved. */
      t1?: number;
      /** release: when the first command after t0 was handed to ioredis (written to the socket). */
      sentAt?: number;
      /** acquire: when the last pub/sub message before t1 arrived (the grant, for lockdeck). */
      msgAt?: number;
      fence?: string | null;
      got?: boolean;
      counters?: Counters;
      pid?: number;
    }
  | { id: number; ok: false; error: string };

/** Unsolicited notice about a pending request (redlock: its first attempt was refused). */
export interface WorkerEvent {
  id: number;
  event: 'blocked';
}
