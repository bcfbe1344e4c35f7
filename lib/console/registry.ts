import 'server-only';

/**
 * The console's connections: one backend per configuration entry, made once per server process
 * (cached on globalThis, so `next dev` reloads do not open new connections) and closed on
 * SIGTERM/SIGINT.
 *
 * Isolation: every inspector call goes through {@link Registry.call}, which bounds it with a
 * per-backend timeout (Promise.race; the call itself cannot be cancelled, but nobody waits for
 * it), names the backend in its error, and marks the backend down on a connection failure. A
 * backend known to be down fails its calls at once (503) and is skipped by the all-backends
 * listing, so one dead store costs the others nothing and its own callers no timeout; its
 * status says why, and every such call asks for a fresh ping so recovery is noticed quickly.
 *
 * Health: a loop pings every backend each `healthIntervalMs` (and on demand, coalesced), each
 * ping bounded by `pingTimeoutMs`. Status is `up` after a successful ping and `down` after a
 * failed ping or call. A backend that could not even be created (bad path, unsupported type) is
 * down with that reason; creation is retried by the loop unless the type is unsupported.
 */
import { createBackend } from '../backends';
import type { BackendConfig } from '../backends/config';
import { BackendUnavailableError, UnknownBackendError } from '../locks/errors';
import type { BackendType, Capabilities, ForeignDiscoveryStatus, LeaseRevoker, LockBackend, Unsubscribe } from '../locks/types';
import { getConfig, getTuning, type ConsoleTuning } from './config';
import { getMetrics } from './metrics';
import { singleton } from './singleton';

/** A backend's status as the API shows it (contract: `GET /api/backends`). */
export interface BackendStatus {
  id: string;
  type: BackendType;
  status: 'up' | 'down';
  error?: string;
  latencyMs?: number;
  /** Epoch ms of the last health check; null before the first one finished. */
  checkedAt: number | null;
  capabilities: Capabilities | null;
  /**
   * The backend's background discovery of foreign locks (Redis with `match`), once a listing
   * started it: how old what it knows is, and `behind` when its last complete pass is older than
   * it should be (passes failing): foreign locks taken since then are not listed.
   */
  discovery?: ForeignDiscoveryStatus & { behind: boolean };
}

/** `behind`: a pass finished once, and the last one is older than the discovery's own bound. */
export function withBehind(s: ForeignDiscoveryStatus): ForeignDiscoveryStatus & { behind: boolean } {
  return { ...s, behind: s.state !== 'stopped' && s.lastPassAgeMs !== null && s.lastPassAgeMs > s.staleAfterMs };
}

interface Entry {
  readonly config: BackendConfig;
  backend: LockBackend | null;
  /** Creation failed for good (unsupported type): never retried. */
  permanent: boolean;
  up: boolean;
  error: string | undefined;
  latencyMs: number | undefined;
  checkedAt: number | null;
  checking: Promise<void> | null;
  /** A first verdict was announced to the status listeners. */
  reported: boolean;
}

export type BackendFactory = (config: BackendConfig) => LockBackend;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** lib/locks errors by their stable code (class identity may differ between module graphs). */
function codeOf(err: unknown): string | undefined {
  const c = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return typeof c === 'string' ? c : undefined;
}

const LOCK_ERROR_CODES = new Set(['invalid_argument', 'acquire_timeout', 'lock_lost', 'backend_unavailable', 'unknown_backend', 'not_supported', 'lock_error']);

/** Resolves like `p`, or rejects with `onTimeout()` after `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  // The losing promise must not become an unhandled rejection.
  p.catch(() => undefined);
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export class Registry {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<(s: BackendStatus) => void>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    configs: readonly BackendConfig[],
    private readonly tuning: Pick<ConsoleTuning, 'backendTimeoutMs' | 'pingTimeoutMs' | 'healthIntervalMs'>,
    private readonly factory: BackendFactory = createBackend,
  ) {
    for (const config of configs) {
      const e: Entry = { config, backend: null, permanent: false, up: false, error: 'not checked yet', latencyMs: undefined, checkedAt: null, checking: null, reported: false };
      this.entries.set(config.id, e);
      this.create(e);
    }
  }

  /** Starts the health loop (first round at once). */
  start(): void {
    if (this.timer || this.closed) return;
    void this.checkAll();
    this.timer = setInterval(() => void this.checkAll(), this.tuning.healthIntervalMs);
    this.timer.unref();
  }

  ids(): string[] {
    return [...this.entries.keys()];
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  configOf(id: string): BackendConfig {
    return this.entry(id).config;
  }

  /** The backend object, or null while it cannot be created. Throws for an unknown id. */
  backendOf(id: string): LockBackend | null {
    return this.entry(id).backend;
  }

  isUp(id: string): boolean {
    return this.entry(id).up;
  }

  status(id: string): BackendStatus {
    const e = this.entry(id);
    return {
      id: e.config.id,
      type: e.config.type,
      status: e.up ? 'up' : 'down',
      ...(e.up || e.error === undefined ? {} : { error: e.error }),
      ...(e.up && e.latencyMs !== undefined ? { latencyMs: e.latencyMs } : {}),
      checkedAt: e.checkedAt,
      capabilities: e.backend
        ? { ...e.backend.capabilities, leaseRevocation: typeof (e.backend as Partial<LeaseRevoker>).revokeLease === 'function' }
        : null,
      ...discoveryOf(e.backend),
    };
  }

  /** Sets the foreign-discovery gauges (at scrape time: the figures age by the second). */
  updateDiscoveryGauges(): void {
    const m = getMetrics();
    for (const e of this.entries.values()) {
      const d = discoveryOf(e.backend).discovery;
      if (!d) continue;
      const backend = e.config.id;
      m.discoveryKnown.set({ backend }, d.known);
      m.discoveryPasses.set({ backend }, d.passes);
      m.discoveryBehind.set({ backend }, d.behind ? 1 : 0);
      if (d.lastPassAgeMs !== null) m.discoveryLastPassAge.set({ backend }, d.lastPassAgeMs / 1000);
      if (d.lastPassMs !== null) m.discoveryPassSeconds.set({ backend }, d.lastPassMs / 1000);
    }
  }

  statuses(): BackendStatus[] {
    return this.ids().map((id) => this.status(id));
  }

  /**
   * Re-checks statuses older than `maxAgeMs` and waits for the answers up to `waitMs`: a live
   * store answers a ping in a millisecond, a dead one would hold the request for the whole ping
   * timeout, so after `waitMs` the last known status is answered instead.
   */
  async freshStatuses(maxAgeMs: number, waitMs = 300): Promise<BackendStatus[]> {
    const now = Date.now();
    const checks = [...this.entries.values()].filter((e) => e.checkedAt === null || now - e.checkedAt > maxAgeMs).map((e) => this.check(e));
    if (checks.length) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(checks), new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
      clearTimeout(timer);
    }
    return this.statuses();
  }

  /** Called on every up/down transition (and when a down backend's error changes). */
  onStatus(listener: (s: BackendStatus) => void): Unsubscribe {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Runs one call against backend `id`, bounded by the backend timeout. Errors name the backend;
   * connection failures and timeouts mark it down and schedule a re-check.
   */
  async call<T>(id: string, what: string, fn: (b: LockBackend) => Promise<T>, timeoutMs = this.tuning.backendTimeoutMs): Promise<T> {
    const e = this.entry(id);
    const b = e.backend;
    if (!b) throw new BackendUnavailableError(`backend "${id}" is unavailable: ${e.error ?? 'not connected'}`);
    if (!e.up && e.checkedAt !== null) {
      // Known down: answer now instead of after a timeout, and have it re-checked at once, so a
      // backend that is back is used again by the next request.
      void this.check(e);
      throw new BackendUnavailableError(`backend "${id}" is down: ${e.error ?? 'unreachable'}`);
    }
    try {
      return await withTimeout(
        Promise.resolve().then(() => fn(b)),
        timeoutMs,
        () => new BackendUnavailableError(`backend "${id}": ${what} did not answer within ${timeoutMs} ms`),
      );
    } catch (err) {
      if (codeOf(err) === 'backend_unavailable') {
        const prefix = `backend "${id}": `;
        const msg = message(err);
        const named = msg.startsWith(`backend "${id}"`) ? err : new BackendUnavailableError(prefix + msg, { cause: err });
        // The status is already per backend: keep its error free of the prefix.
        this.setDown(e, msg.startsWith(prefix) ? msg.slice(prefix.length) : msg);
        void this.check(e);
        throw named;
      }
      if (LOCK_ERROR_CODES.has(codeOf(err) ?? '')) throw err;
      // Anything else from a store (a protocol error, an unexpected reply) is its failure, not the
      // request's: report it as unavailable, named, rather than as a console bug.
      throw new BackendUnavailableError(`backend "${id}": ${what} failed: ${message(err)}`, { cause: err });
    }
  }

  /** Pings every backend now (coalesced with checks already running). */
  checkAll(): Promise<void> {
    return Promise.all([...this.entries.values()].map((e) => this.check(e))).then(() => undefined);
  }

  /** Pings one backend soon, unless a check is running already. */
  requestCheck(id: string): void {
    const e = this.entries.get(id);
    if (e) void this.check(e);
  }

  private check(e: Entry): Promise<void> {
    if (this.closed) return Promise.resolve();
    e.checking ??= this.doCheck(e).finally(() => {
      e.checking = null;
    });
    return e.checking;
  }

  private async doCheck(e: Entry): Promise<void> {
    if (!e.backend && !e.permanent) this.create(e);
    const b = e.backend;
    if (!b) {
      e.checkedAt = Date.now();
      this.setDown(e, e.error ?? 'not connected');
      return;
    }
    const id = e.config.id;
    try {
      const ms = await withTimeout(
        Promise.resolve().then(() => b.ping()),
        this.tuning.pingTimeoutMs,
        () => new BackendUnavailableError(`no answer to a ping within ${this.tuning.pingTimeoutMs} ms`),
      );
      e.checkedAt = Date.now();
      e.latencyMs = Math.round(ms * 100) / 100;
      getMetrics().pingSeconds.observe({ backend: id }, ms / 1000);
      this.setUp(e);
    } catch (err) {
      e.checkedAt = Date.now();
      this.setDown(e, message(err));
    }
  }

  private create(e: Entry): void {
    try {
      e.backend = this.factory(e.config);
      e.error = 'not checked yet';
    } catch (err) {
      e.backend = null;
      e.permanent = codeOf(err) === 'not_supported';
      e.error = `cannot connect: ${message(err)}`;
      this.setDown(e, e.error);
    }
  }

  private setUp(e: Entry): void {
    const announce = !e.up || !e.reported;
    e.up = true;
    e.error = undefined;
    getMetrics().backendUp.set({ backend: e.config.id, type: e.config.type }, 1);
    if (announce) this.emit(e);
  }

  /** Announces transitions and first verdicts only: a dead store fails every ping, differently. */
  private setDown(e: Entry, error: string): void {
    const announce = e.up || !e.reported;
    e.up = false;
    e.error = error;
    getMetrics().backendUp.set({ backend: e.config.id, type: e.config.type }, 0);
    if (announce) this.emit(e);
  }

  private emit(e: Entry): void {
    e.reported = true;
    const s = this.status(e.config.id);
    for (const l of [...this.listeners]) {
      try {
        l(s);
      } catch (err) {
        console.error('[lockdeck] backend status listener failed:', err);
      }
    }
  }

  private entry(id: string): Entry {
    const e = this.entries.get(id);
    if (!e) throw new UnknownBackendError(id);
    return e;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await Promise.allSettled([...this.entries.values()].map((e) => e.backend?.close()));
  }
}

/** The registry of this server process, made from the configuration on first use. */
export function getRegistry(): Registry {
  return singleton('registry', () => {
    const r = new Registry(getConfig().backends, getTuning());
    r.start();
    return r;
  });
}

function discoveryOf(b: LockBackend | null): { discovery?: ForeignDiscoveryStatus & { behind: boolean } } {
  const s = b?.discoveryStatus?.() ?? null;
  return s ? { discovery: withBehind(s) } : {};
}
