import 'server-only';

/**
 * The console's configuration (contract.md §1): one JSON file, validated once at start-up.
 *
 * Where it comes from, first match wins: the path in `LOCKDECK_CONFIG` (which must exist),
 * `./lockdeck.config.json`, else the embedded default (one sqlite backend at
 * `.lockdeck/locks.db`). Relative sqlite paths are resolved against the server's working
 * directory, like every other relative path the server is given.
 *
 * Environment (read once, with the file):
 *  - `LOCKDECK_READ_ONLY=1|true` forces read-only mode, whatever the file says;
 *  - `LOCKDECK_DATA_DIR` is where the console keeps its own history and audit database
 *    (`console.db`; default `.lockdeck`, next to the embedded store);
 *  - `LOCKDECK_PUBLIC_URL` is the console's own origin as browsers see it, for the CSRF check
 *    when it runs behind a proxy that rewrites `Host` (the file's `publicUrl` does the same);
 *  - tuning knobs, see {@link ConsoleTuning}.
 * Tokens are read by auth.ts, not here, so that they never end up in a config object.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { z } from 'zod';

import { backendConfigSchema, type BackendConfig } from '../backends/config';
import { DEFAULT_BACKENDS } from '../backends';
import { DEFAULT_SESSION_TTL_MS, type Env } from './session';
import { dropSingleton, singleton } from './singleton';

/** An invalid configuration: the message names the file, the field path and the reason. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const DEFAULT_FILE = 'lockdeck.config.json';
export const EMBEDDED_DEFAULT = 'embedded default';

const origin = z
  .string()
  .url('must be a URL such as https://locks.example.com')
  .refine((s) => /^https?:\/\//.test(s), 'must be an http:// or https:// URL')
  .transform((s) => new URL(s).origin);

export const configFileSchema = z
  .object({
    /** Editors' JSON-schema hint; ignored. */
    $schema: z.string().optional(),
    backends: z.array(backendConfigSchema).min(1, 'list at least one backend').max(64, 'at most 64 backends'),
    readOnly: z.boolean().optional(),
    /** The console's public origin (behind a reverse proxy); see the CSRF check in auth.ts. */
    publicUrl: origin.optional(),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const seen = new Map<string, number>();
    cfg.backends.forEach((b, i) => {
      const first = seen.get(b.id);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['backends', i, 'id'], message: `duplicate id "${b.id}" (also backends[${first}].id)` });
      } else {
        seen.set(b.id, i);
      }
    });
  });

export interface ConsoleConfig {
  /** Where the configuration came from: a path as given, or "embedded default". */
  source: string;
  backends: readonly BackendConfig[];
  readOnly: boolean;
  /** Why read-only: the file, the environment, or null when writable. */
  readOnlyBy: 'config' | 'env' | null;
  /** The console's own origin as configured (file or env), or null to trust the Host header. */
  publicOrigin: string | null;
  /** Absolute directory of console.db (history + audit). */
  dataDir: string;
}

/** `backends[1].url` from zod's path. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(top level)';
}

/** One line per problem: `<source>: <path>: <reason>`. */
export function formatIssues(source: string, error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((k) => `${source}: ${formatPath([...issue.path, k])}: unknown field`).join('\n');
      }
      let reason = issue.message;
      if (issue.code === 'invalid_union' && issue.path.at(-1) === 'type') {
        reason = 'must be one of redis, sqlite, zookeeper, etcd, dynamodb';
      }
      return `${source}: ${formatPath(issue.path)}: ${reason}`;
    })
    .join('\n');
}

/** Validates a parsed configuration file. Throws {@link ConfigError}. */
export function parseConfigFile(raw: unknown, source: string): z.infer<typeof configFileSchema> {
  const r = configFileSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(formatIssues(source, r.error));
  return r.data;
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());
}

function displayPath(abs: string, cwd: string): string {
  const rel = relative(cwd, abs);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
}

/**
 * Reads and validates the configuration. Pure apart from reading the file: tests pass `env` and
 * `cwd`. Throws {@link ConfigError} with a message fit to print as the reason the server stops.
 */
export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): ConsoleConfig {
  let file: z.infer<typeof configFileSchema> | null = null;
  let source = EMBEDDED_DEFAULT;
  const explicit = env.LOCKDECK_CONFIG?.trim();
  const path = explicit ? resolve(cwd, explicit) : resolve(cwd, DEFAULT_FILE);
  if (explicit || existsSync(path)) {
    source = displayPath(path, cwd);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
      throw new ConfigError(`${source}: cannot read the configuration (LOCKDECK_CONFIG=${explicit ?? ''}): ${why}`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`${source}: not valid JSON: ${(err as Error).message}`);
    }
    file = parseConfigFile(raw, source);
  }

  const envReadOnly = truthy(env.LOCKDECK_READ_ONLY);
  const fileReadOnly = file?.readOnly === true;
  let publicOrigin = file?.publicUrl ?? null;
  if (env.LOCKDECK_PUBLIC_URL?.trim()) {
    const r = origin.safeParse(env.LOCKDECK_PUBLIC_URL.trim());
    if (!r.success) throw new ConfigError(`LOCKDECK_PUBLIC_URL: ${r.error.issues[0]?.message ?? 'invalid'}`);
    publicOrigin = r.data;
  }
  return Object.freeze({
    source,
    backends: Object.freeze(file ? file.backends : DEFAULT_BACKENDS.map((b) => ({ ...b }))),
    readOnly: envReadOnly || fileReadOnly,
    readOnlyBy: envReadOnly ? 'env' : fileReadOnly ? 'config' : null,
    publicOrigin,
    dataDir: resolve(cwd, env.LOCKDECK_DATA_DIR?.trim() || '.lockdeck'),
  });
}

/** The configuration of this server process, loaded once (instrumentation.ts loads it first). */
export function getConfig(): ConsoleConfig {
  try {
    return singleton('config', () => loadConfig());
  } catch (err) {
    dropSingleton('config');
    throw err;
  }
}

/** Timings and limits; each can be overridden by an environment variable (integer ms / count). */
export interface ConsoleTuning {
  /** LOCKDECK_BACKEND_TIMEOUT_MS: bound on every inspector call to one backend. */
  backendTimeoutMs: number;
  /** LOCKDECK_PING_TIMEOUT_MS: bound on one health ping. */
  pingTimeoutMs: number;
  /** LOCKDECK_HEALTH_INTERVAL_MS: period of the health loop. */
  healthIntervalMs: number;
  /** LOCKDECK_RECONCILE_INTERVAL_MS: re-list period while someone watches the event stream. */
  reconcileIntervalMs: number;
  /** LOCKDECK_HEARTBEAT_MS: SSE comment period (keeps proxies from closing an idle stream). */
  heartbeatMs: number;
  /** LOCKDECK_RELEASE_RATE_LIMIT: force-release attempts per actor per minute. */
  releasesPerMinute: number;
  /** LOCKDECK_SESSION_TTL_MS: lifetime of a login cookie. */
  sessionTtlMs: number;
}

const TUNING: Record<keyof ConsoleTuning, [env: string, def: number, min: number, max: number]> = {
  backendTimeoutMs: ['LOCKDECK_BACKEND_TIMEOUT_MS', 3000, 50, 120_000],
  pingTimeoutMs: ['LOCKDECK_PING_TIMEOUT_MS', 2000, 50, 60_000],
  healthIntervalMs: ['LOCKDECK_HEALTH_INTERVAL_MS', 5000, 100, 3_600_000],
  reconcileIntervalMs: ['LOCKDECK_RECONCILE_INTERVAL_MS', 5000, 100, 3_600_000],
  heartbeatMs: ['LOCKDECK_HEARTBEAT_MS', 15_000, 100, 3_600_000],
  releasesPerMinute: ['LOCKDECK_RELEASE_RATE_LIMIT', 10, 1, 1_000_000],
  sessionTtlMs: ['LOCKDECK_SESSION_TTL_MS', DEFAULT_SESSION_TTL_MS, 60_000, 30 * 24 * 3600_000],
};

export function loadTuning(env: Env = process.env): ConsoleTuning {
  const out = {} as ConsoleTuning;
  for (const [k, [name, def, min, max]] of Object.entries(TUNING) as Array<[keyof ConsoleTuning, (typeof TUNING)[keyof ConsoleTuning]]>) {
    const raw = env[name]?.trim();
    if (!raw) {
      out[k] = def;
      continue;
    }
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name}: must be an integer from ${min} to ${max}, got "${raw}"`);
    out[k] = n;
  }
  return Object.freeze(out);
}

export function getTuning(): ConsoleTuning {
  try {
    return singleton('tuning', () => loadTuning());
  } catch (err) {
    dropSingleton('tuning');
    throw err;
  }
}
