import 'server-only';

/**
 * Prometheus metrics of the console, on a Registry of its own (never prom-client's global one,
 * which other code in the process might also fill).
 *
 * Label cardinality is bounded by construction: `backend` is a configured id, `type`/`result`/
 * `event` come from fixed sets, and `format` is a recogniser's name, cut to
 * {@link MAX_FORMATS_PER_BACKEND} distinct values per backend (the rest count as `other`).
 * A lock key is never a label: keys are unbounded and may be sensitive.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import { singleton } from './singleton';

export const MAX_FORMATS_PER_BACKEND = 32;

export interface ConsoleMetrics {
  registry: Registry;
  locksHeld: Gauge<'backend' | 'format'>;
  waiters: Gauge<'backend'>;
  forcedReleases: Counter<'backend' | 'result'>;
  backendUp: Gauge<'backend' | 'type'>;
  pingSeconds: Histogram<'backend'>;
  lockEvents: Counter<'backend' | 'event' | 'source'>;
  sseClients: Gauge;
  discoveryKnown: Gauge<'backend'>;
  discoveryPasses: Gauge<'backend'>;
  discoveryBehind: Gauge<'backend'>;
  discoveryLastPassAge: Gauge<'backend'>;
  discoveryPassSeconds: Gauge<'backend'>;
}

export function getMetrics(): ConsoleMetrics {
  return singleton('metrics', () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix: 'lockdeck_console_' });
    const m: ConsoleMetrics = {
      registry,
      locksHeld: new Gauge({
        name: 'lockdeck_locks_held',
        help: 'Locks currently held, per backend and recognised format (as of the last scrape).',
        labelNames: ['backend', 'format'],
        registers: [registry],
      }),
      waiters: new Gauge({
        name: 'lockdeck_lock_waiters',
        help: 'Waiters queued on held locks, per backend (where the layout records them).',
        labelNames: ['backend'],
        registers: [registry],
      }),
      forcedReleases: new Counter({
        name: 'lockdeck_forced_releases_total',
        help: 'Force-release attempts through the console, by backend and result.',
        labelNames: ['backend', 'result'],
        registers: [registry],
      }),
      backendUp: new Gauge({
        name: 'lockdeck_backend_up',
        help: '1 when the last health ping of the backend succeeded, else 0.',
        labelNames: ['backend', 'type'],
        registers: [registry],
      }),
      pingSeconds: new Histogram({
        name: 'lockdeck_backend_ping_seconds',
        help: 'Latency of successful health pings.',
        labelNames: ['backend'],
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers: [registry],
      }),
      lockEvents: new Counter({
        name: 'lockdeck_lock_events_total',
        help: 'Lock changes seen by the console, by backend, event type ("renewed": a changed that only moved the same holder\'s expiry, streamed but not stored) and source (watch or reconcile).',
        labelNames: ['backend', 'event', 'source'],
        registers: [registry],
      }),
      sseClients: new Gauge({
        name: 'lockdeck_console_event_streams',
        help: 'Open /api/events streams.',
        registers: [registry],
      }),
      // Foreign-lock discovery (Redis backends with `match`): a paced background SCAN finds the
      // keys of foreign clients' locks; these say how fresh what it found is.
      discoveryKnown: new Gauge({
        name: 'lockdeck_foreign_discovery_known_locks',
        help: 'Foreign lock keys the background discovery remembers, per backend.',
        labelNames: ['backend'],
        registers: [registry],
      }),
      discoveryPasses: new Gauge({
        name: 'lockdeck_foreign_discovery_passes',
        help: 'Complete discovery passes over the keyspace since the console started, per backend.',
        labelNames: ['backend'],
        registers: [registry],
      }),
      discoveryBehind: new Gauge({
        name: 'lockdeck_foreign_discovery_behind',
        help: '1 when the last complete discovery pass is older than it should be (passes failing): foreign locks taken since are not listed.',
        labelNames: ['backend'],
        registers: [registry],
      }),
      discoveryLastPassAge: new Gauge({
        name: 'lockdeck_foreign_discovery_last_pass_age_seconds',
        help: 'Time since the last complete discovery pass started: foreign locks taken after it may not be listed yet.',
        labelNames: ['backend'],
        registers: [registry],
      }),
      discoveryPassSeconds: new Gauge({
        name: 'lockdeck_foreign_discovery_pass_seconds',
        help: 'How long the last complete discovery pass took.',
        labelNames: ['backend'],
        registers: [registry],
      }),
    };
    return m;
  });
}

/** A bounded `format` label value. */
export function formatLabel(format: string, seen: Set<string>): string {
  if (!/^[a-z0-9._-]{1,40}$/i.test(format)) return 'other';
  if (!seen.has(format) && seen.size >= MAX_FORMATS_PER_BACKEND) return 'other';
  seen.add(format);
  return format;
}
