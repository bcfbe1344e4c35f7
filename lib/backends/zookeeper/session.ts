/**
 * A promise face over node-zookeeper-client (1.1.3, ZooKeeper 3.4 wire protocol: no CREATE2, no
 * container nodes, no addWatch) with the two things the library leaves to its caller:
 *
 * - **Bounded calls.** The client queues requests while disconnected and sends them after it
 *   reconnects, however long that takes; every call here rejects with BackendUnavailableError after
 *   `opTimeoutMs` instead (the request may still reach the server later: callers that create nodes
 *   find them again by name, see index.ts).
 * - **A new session after expiry.** An expired client is closed for good; `ZkSession` replaces it
 *   and tells its owner, whose ephemeral nodes (held locks, queued waiters) died with the old one.
 */
import zookeeper, { type Client, type Event, type Stat } from 'node-zookeeper-client';

import { BackendUnavailableError, LockError } from '../../locks/errors';

export const { CreateMode, Exception } = zookeeper;

export interface SessionListener {
  /** The connection dropped: the session may still be alive (ephemeral nodes stay until it expires). */
  onDisconnected(): void;
  /** Connected (again) with the same or a new session. */
  onConnected(): void;
  /** The session expired: every ephemeral node of ours is gone; a new session is being opened. */
  onExpired(): void;
}

export interface ZkSessionOptions {
  sessionTimeoutMs: number;
  /** Bound of one request, and of waiting for a connection (default: the session timeout). */
  opTimeoutMs?: number;
}

/** The ZooKeeper error code of a failed call, if it is one. */
export function zkCode(err: unknown): number | undefined {
  const e = err as { getCode?: () => number; code?: unknown } | null;
  if (e && typeof e.getCode === 'function') return e.getCode();
  return undefined;
}

export const isNoNode = (err: unknown) => zkCode(err) === Exception.NO_NODE;
export const isNodeExists = (err: unknown) => zkCode(err) === Exception.NODE_EXISTS;
export const isBadVersion = (err: unknown) => zkCode(err) === Exception.BAD_VERSION;
export const isNotEmpty = (err: unknown) => zkCode(err) === Exception.NOT_EMPTY;
export const isConnectionLoss = (err: unknown) =>
  zkCode(err) === Exception.CONNECTION_LOSS || zkCode(err) === Exception.OPERATION_TIMEOUT || err instanceof OpTimeoutError;

class OpTimeoutError extends BackendUnavailableError {}

/** The parts of a Stat the backend uses, as numbers and text. */
export interface NodeStat {
  /** Creation time, ms, by the leader's clock. */
  ctime: number;
  /** Globally increasing id of the transaction that created the node (decimal). */
  czxid: string;
  version: number;
  /** The owning session as 16 hex digits, or null for a persistent node. */
  session: string | null;
  numChildren: number;
}

export function nodeStat(stat: Stat): NodeStat {
  const owner = stat.ephemeralOwner.toString('hex');
  return {
    ctime: Number(stat.ctime.readBigInt64BE(0)),
    czxid: stat.czxid.readBigInt64BE(0).toString(),
    version: stat.version,
    session: /^0+$/.test(owner) ? null : owner,
    numChildren: stat.numChildren,
  };
}

/** A request waiting for its answer, in ZkSession's queue of op timeouts. */
interface Pending {
  /** performance.now() past which it is rejected. */
  deadline: number;
  what: string;
  reject(err: unknown): void;
  /** Answered, failed or timed out: no longer queued. */
  done: boolean;
}

export class ZkSession {
  private client: Client;
  private connected = false;
  private closed = false;
  private readonly opTimeoutMs: number;
  private readonly waitingForConnection = new Set<() => void>();
  /** Bumped on every new session: watchers from an older one are stale. */
  generation = 0;
  /**
   * Requests waiting for an answer, oldest first (a Set keeps insertion order). Every request has
   * the same bound, so this is also deadline order: one timer, armed for the oldest, bounds them
   * all. A timer per request (setTimeout + clearTimeout) cost several µs of every lock cycle's
   * three requests.
   */
  private readonly pending = new Set<Pending>();
  private opTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connect: string,
    private readonly opts: ZkSessionOptions,
    private readonly listener: SessionListener,
  ) {
    this.opTimeoutMs = opts.opTimeoutMs ?? opts.sessionTimeoutMs;
    this.client = this.open();
  }

  private open(): Client {
    const client = zookeeper.createClient(this.connect, { sessionTimeout: this.opts.sessionTimeoutMs, spinDelay: 200, retries: 0 });
    const gen = ++this.generation;
    client.on('connected', () => {
      if (gen !== this.generation || this.closed) return;
      this.connected = true;
      for (const w of [...this.waitingForConnection]) w();
      this.listener.onConnected();
    });
    client.on('disconnected', () => {
      if (gen !== this.generation || this.closed) return;
      const was = this.connected;
      this.connected = false;
      if (was) this.listener.onDisconnected();
    });
    client.on('expired', () => {
      if (gen !== this.generation || this.closed) return;
      this.connected = false;
      client.close();
      this.client = this.open();
      this.listener.onExpired();
    });
    client.connect();
    return client;
  }

  /** The current session id as 16 hex digits (null before the first connection). */
  sessionId(): string | null {
    const id = this.client.getSessionId?.();
    return id && id.length ? id.toString('hex') : null;
  }

  isConnected(): boolean {
    return this.connected;
  }

  /** Resolves once connected; rejects after the op timeout. */
  ready(): Promise<void> {
    if (this.closed) return Promise.reject(new BackendUnavailableError('ZooKeeper session is closed'));
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.waitingForConnection.delete(done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waitingForConnection.delete(done);
        reject(new OpTimeoutError(`no connection to ZooKeeper (${this.connect}) within ${this.opTimeoutMs} ms`));
      }, this.opTimeoutMs);
      this.waitingForConnection.add(done);
    });
  }

  /**
   * One request, bounded by the op timeout. Connected (the usual case), it is written in this tick
   * and without an async frame: this sits between every answer and the next request of a lock
   * cycle, where each microtask hop and allocation shows in the latency.
   */
  private call<T>(what: string, start: (c: Client, cb: (err: unknown, value?: T) => void) => void): Promise<T> {
    if (!this.connected) return this.ready().then(() => this.send(what, start));
    return this.send(what, start);
  }

  private send<T>(what: string, start: (c: Client, cb: (err: unknown, value?: T) => void) => void): Promise<T> {
    const client = this.client;
    return new Promise<T>((resolve, reject) => {
      const p: Pending = { deadline: 0, what, reject, done: false };
      try {
        start(client, (err, value) => {
          if (p.done) return; // timed out already
          this.dequeue(p);
          if (err) reject(err);
          else resolve(value as T);
        });
      } catch (err) {
        // Path.validate throws synchronously on a malformed path.
        p.done = true;
        reject(err);
        return;
      }
      // Queued once the request is written: the bound is bookkeeping, the request goes out first.
      if (!p.done) this.enqueue(p);
    });
  }

  private enqueue(p: Pending): void {
    p.deadline = performance.now() + this.opTimeoutMs;
    this.pending.add(p);
    if (!this.opTimer) this.opTimer = setTimeout(this.expireCalls, this.opTimeoutMs);
    // Ref'd while a request waits (as a timer per request was), so its rejection is not lost to a
    // process exit; unref'd while none does (dequeue).
    else if (this.pending.size === 1) this.opTimer.ref();
  }

  private dequeue(p: Pending): void {
    p.done = true;
    this.pending.delete(p);
    if (this.pending.size === 0) this.opTimer?.unref();
  }

  /** The op timer: rejects every request past its deadline, then waits for the next oldest. */
  private readonly expireCalls = (): void => {
    this.opTimer = undefined;
    const now = performance.now();
    for (const p of this.pending) {
      if (p.deadline > now) break; // oldest first: the rest are later
      this.dequeue(p);
      p.reject(new OpTimeoutError(`${p.what}: no answer from ZooKeeper within ${this.opTimeoutMs} ms`));
    }
    // The timer's millisecond clock may fire a fraction early: at least 1 ms more, then.
    const oldest = this.pending.values().next().value;
    if (oldest) this.opTimer = setTimeout(this.expireCalls, Math.max(1, oldest.deadline - now));
  };

  create(path: string, data: Buffer, mode: number): Promise<string> {
    return this.call(`create ${path}`, (c, cb) => c.create(path, data, mode, (e, p) => cb(e, p)));
  }

  /** Creates the persistent parents of `path` (and `path` itself) as needed. */
  mkdirp(path: string): Promise<string> {
    return this.call(`mkdirp ${path}`, (c, cb) => c.mkdirp(path, (e, p) => cb(e, p)));
  }

  /** Replaces the node's data; with `version` only if the node is still at that version (BAD_VERSION otherwise). */
  setData(path: string, data: Buffer, version = -1): Promise<NodeStat> {
    return this.call(`setData ${path}`, (c, cb) => c.setData(path, data, version, (e, stat) => cb(e, e ? undefined : nodeStat(stat))));
  }

  remove(path: string, version = -1): Promise<void> {
    return this.call(`delete ${path}`, (c, cb) => c.remove(path, version, (e) => cb(e)));
  }

  getChildren(path: string, watcher?: (e: Event) => void): Promise<{ children: string[]; stat: NodeStat }> {
    return this.call(`getChildren ${path}`, (c, cb) => {
      const done = (e: unknown, children: string[], stat: Stat) => cb(e, e ? undefined : { children, stat: nodeStat(stat) });
      if (watcher) c.getChildren(path, watcher, done);
      else c.getChildren(path, done);
    });
  }

  /** getChildren without the stat: the names only (the acquire path needs no more). */
  childNames(path: string): Promise<string[]> {
    return this.call(`getChildren ${path}`, (c, cb) => c.getChildren(path, (e, children) => cb(e, children)));
  }

  getData(path: string, watcher?: (e: Event) => void): Promise<{ data: Buffer; stat: NodeStat }> {
    return this.call(`getData ${path}`, (c, cb) => {
      const done = (e: unknown, data: Buffer, stat: Stat) => cb(e, e ? undefined : { data: data ?? Buffer.alloc(0), stat: nodeStat(stat) });
      if (watcher) c.getData(path, watcher, done);
      else c.getData(path, done);
    });
  }

  /** The node's stat, or null when it does not exist. */
  exists(path: string, watcher?: (e: Event) => void): Promise<NodeStat | null> {
    return this.call(`exists ${path}`, (c, cb) => {
      const done = (e: unknown, stat: Stat) => cb(e, e ? undefined : stat ? nodeStat(stat) : null);
      if (watcher) c.exists(path, watcher, done);
      else c.exists(path, done);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const wasConnected = this.connected;
    this.connected = false;
    for (const w of [...this.waitingForConnection]) w();
    const client = this.client;
    if (wasConnected) {
      client.close();
      return;
    }
    // node-zookeeper-client 1.1.3 mishandles a close during the connect handshake: the server's
    // ConnectResponse is then parsed as a reply and an "Unknown code" error is thrown from a socket
    // handler, out of reach of any caller (ConnectionManager.onSocketData). So close once the
    // handshake is done, or after it had its chance (a server that is down never answers).
    let done = false;
    const closeNow = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      client.close();
    };
    client.once('connected', closeNow);
    const timer = setTimeout(closeNow, Math.min(this.opts.sessionTimeoutMs, 2000));
  }
}

export type { Event };
export const EventType = zookeeper.Event;

/** Requests in flight at once when reading many nodes (the client pipelines them). */
export const READ_BATCH = 256;

/** Runs `fn` over `items` with at most READ_BATCH requests in flight. */
export async function batched<T, R>(items: readonly T[], fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += READ_BATCH) out.push(...(await Promise.all(items.slice(i, i + READ_BATCH).map(fn))));
  return out;
}

/** A lockdeck error as it is, anything else (a ZooKeeper or transport error) as BackendUnavailableError. */
export function unavailable(err: unknown, what: string): LockError {
  if (err instanceof LockError) return err;
  const msg = err instanceof Error ? err.message : String((err as { toString(): string })?.toString?.() ?? err);
  return new BackendUnavailableError(`${what}: ${msg}`, { cause: err });
}
