/**
 * Runs the real console for HTTP tests: `next build` at most once per `vitest run` (and not at all
 * when `.next` is newer than every source file, e.g. right after the e2e suite built it), then
 * `next start` on a free loopback port with its own config, data dir and tokens.
 *
 * Building is guarded by a lock directory in the temp dir, so the two vitest workers (and a
 * concurrent run) never build at the same time; the second one finds a fresh build and skips.
 * `LOCKDECK_TEST_REBUILD=1` forces a build.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort } from '../../scripts/servers';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NEXT_BIN = join(ROOT, 'node_modules', 'next', 'dist', 'bin', 'next');
const BUILD_LOCK = join(tmpdir(), `lockdeck-next-build-${Buffer.from(ROOT).toString('hex').slice(-16)}.lock`);

/** What the build depends on. Generated files (tsconfig.json edits, next-env.d.ts) are left out. */
const SOURCE_DIRS = ['app', 'lib', 'components'];
const SOURCE_FILES = ['proxy.ts', 'instrumentation.ts', 'next.config.js', 'package.json', 'package-lock.json', 'postcss.config.mjs'];

function newestMtime(path: string): number {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return /\.test\.tsx?$/.test(path) ? 0 : st.mtimeMs;
  let max = 0;
  for (const name of readdirSync(path)) max = Math.max(max, newestMtime(join(path, name)));
  return max;
}

/** True when `.next` holds a production build newer than every source file. */
export function buildIsFresh(): boolean {
  const id = statSync(join(ROOT, '.next', 'BUILD_ID'), { throwIfNoEntry: false });
  if (!id) return false;
  const newest = Math.max(...SOURCE_DIRS.map((d) => newestMtime(join(ROOT, d))), ...SOURCE_FILES.map((f) => newestMtime(join(ROOT, f))));
  return id.mtimeMs > newest;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function withBuildLock<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      mkdirSync(BUILD_LOCK);
      writeFileSync(join(BUILD_LOCK, 'pid'), String(process.pid));
      break;
    } catch {
      let holder = NaN;
      try {
        holder = Number(readFileSync(join(BUILD_LOCK, 'pid'), 'utf8'));
      } catch {
        // being created or removed right now
      }
      // A holder that died leaves the directory behind: take it over.
      if (Number.isInteger(holder) && holder > 0 && !pidAlive(holder)) rmSync(BUILD_LOCK, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`waited 10 min for ${BUILD_LOCK}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(BUILD_LOCK, { recursive: true, force: true });
  }
}

let built: Promise<void> | undefined;

/** Makes sure `.next` holds a fresh production build (see the module comment). */
export function ensureNextBuild(): Promise<void> {
  built ??= withBuildLock(async () => {
    if (process.env.LOCKDECK_TEST_REBUILD !== '1' && buildIsFresh()) return;
    const started = Date.now();
    const out: string[] = [];
    const child = spawn(process.execPath, [NEXT_BIN, 'build'], { cwd: ROOT, env: { ...cleanEnv(), NEXT_TELEMETRY_DISABLED: '1' } as unknown as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => out.push(d.toString()));
    child.stderr.on('data', (d: Buffer) => out.push(d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`next build failed (exit ${code}):\n${out.join('').slice(-4000)}`);
    process.stderr.write(`[console tests] next build took ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  });
  return built;
}

/** The test process's environment without any LOCKDECK_* setting that would leak into a server. */
function cleanEnv(): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LOCKDECK_') && !k.startsWith('__NEXT') && k !== 'PORT' && k !== 'NODE_ENV'));
}

export interface ConsoleServer {
  readonly url: string;
  readonly port: number;
  /** Temp dir holding the config and the data dir. */
  readonly dir: string;
  readonly dataDir: string;
  /** Every stdout line so far. */
  readonly stdout: string[];
  readonly stderr: string[];
  readonly process: ChildProcess;
  /** fetch() against the server; `token` becomes a bearer header. */
  fetch(path: string, init?: RequestInit & { token?: string }): Promise<Response>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Written to a temp file and passed as LOCKDECK_CONFIG (omit for the embedded default). */
  config?: unknown;
  env?: Record<string, string | undefined>;
  /** Default 30 s. */
  readyTimeoutMs?: number;
}

/** `next start` with its own temp config and data dir; resolves once /api/health answers. */
export async function startConsole(opts: StartOptions = {}): Promise<ConsoleServer> {
  await ensureNextBuild();
  const dir = mkdtempSync(join(tmpdir(), 'lockdeck-console-'));
  const dataDir = join(dir, 'data');
  const env: Record<string, string | undefined> = { ...cleanEnv(), NEXT_TELEMETRY_DISABLED: '1', LOCKDECK_DATA_DIR: dataDir };
  if (opts.config !== undefined) {
    const path = join(dir, 'lockdeck.config.json');
    writeFileSync(path, typeof opts.config === 'string' ? opts.config : JSON.stringify(opts.config, null, 2));
    env.LOCKDECK_CONFIG = path;
  }
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const port = await freePort();
  // cwd is a temp dir with a link to the build, so the default ./lockdeck.config.json and
  // .lockdeck/ of the repository are never read or written by a test server.
  const child = spawn(process.execPath, [NEXT_BIN, 'start', ROOT, '-H', '127.0.0.1', '-p', String(port)], {
    cwd: dir,
    env: env as unknown as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const collect = (into: string[]) => {
    let rest = '';
    return (d: Buffer) => {
      const parts = (rest + d.toString()).split('\n');
      rest = parts.pop()!;
      into.push(...parts);
    };
  };
  child.stdout!.on('data', collect(stdout));
  child.stderr!.on('data', collect(stderr));
  const url = `http://127.0.0.1:${port}`;
  let stopped: Promise<void> | undefined;
  const server: ConsoleServer = {
    url,
    port,
    dir,
    dataDir,
    stdout,
    stderr,
    process: child,
    fetch(path, init = {}) {
      const { token, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (token !== undefined) headers.set('authorization', `Bearer ${token}`);
      return fetch(`${url}${path}`, { ...rest, headers, redirect: 'manual' });
    },
    stop() {
      return (stopped ??= new Promise<void>((resolve) => {
        const done = () => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null || child.signalCode !== null) return done();
        const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(killer);
          done();
        });
        child.kill('SIGTERM');
      }));
    },
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null) {
      await server.stop();
      throw new Error(`next start exited with ${child.exitCode}:\n${[...stdout, ...stderr].join('\n').slice(-3000)}`);
    }
    try {
      const r = await fetch(`${url}/api/health`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`console not ready after ${opts.readyTimeoutMs ?? 30_000} ms:\n${[...stdout, ...stderr].join('\n').slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return server;
}

/** Runs `next start` until it exits by itself (for configurations that must refuse to start). */
export async function runUntilExit(opts: StartOptions & { timeoutMs?: number }): Promise<{ code: number | null; output: string }> {
  await ensureNextBuild();
  const dir = mkdtempSync(join(tmpdir(), 'lockdeck-console-'));
  try {
    const env: Record<string, string | undefined> = { ...cleanEnv(), NEXT_TELEMETRY_DISABLED: '1', LOCKDECK_DATA_DIR: join(dir, 'data') };
    if (opts.config !== undefined) {
      const path = join(dir, 'lockdeck.config.json');
      writeFileSync(path, typeof opts.config === 'string' ? opts.config : JSON.stringify(opts.config));
      env.LOCKDECK_CONFIG = path;
    }
    Object.assign(env, opts.env);
    const port = await freePort();
    const child = spawn(process.execPath, [NEXT_BIN, 'start', ROOT, '-H', '127.0.0.1', '-p', String(port)], { cwd: dir, env: env as unknown as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearTimeout(timer);
    return { code, output };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- event stream client ------------------------------------------------------------------

export interface SseEvent {
  event: string;
  data: unknown;
  /** performance.now() when it arrived. */
  receivedAt: number;
}

export interface SseClient {
  readonly events: SseEvent[];
  readonly comments: string[];
  /** Resolves with the first event (already received or future) that matches. */
  waitFor(pred: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  close(): void;
  readonly response: Response;
}

/** One server-sent event block: its `event:` name, its `data:` lines joined (null: none), its comments. */
export interface SseBlock {
  event: string;
  data: string | null;
  comments: string[];
}

/** Reads a text/event-stream body to its end, one call per event block. */
export async function readSse(body: NonNullable<Response['body']>, onBlock: (b: SseBlock) => void): Promise<void> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buf += value;
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = 'message';
      const data: string[] = [];
      const comments: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) comments.push(line.slice(1).trim());
        else if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      onBlock({ event, data: data.length ? data.join('\n') : null, comments });
    }
  }
}

/** Opens /api/events and parses it as it streams. */
export async function openEvents(server: ConsoleServer, init: RequestInit & { token?: string }): Promise<SseClient> {
  const ac = new AbortController();
  const res = await server.fetch('/api/events', { ...init, signal: ac.signal });
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const waiters = new Set<() => void>();
  if (res.ok && res.body) {
    void readSse(res.body, (b) => {
      comments.push(...b.comments);
      if (b.data !== null) events.push({ event: b.event, data: JSON.parse(b.data) as unknown, receivedAt: performance.now() });
      for (const w of [...waiters]) w();
    }).catch(() => undefined); // aborted
  }
  return {
    events,
    comments,
    response: res,
    waitFor(pred, timeoutMs = 5000) {
      return new Promise<SseEvent>((resolve, reject) => {
        const check = () => {
          const hit = events.find(pred);
          if (hit) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(hit);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching event within ${timeoutMs} ms; got: ${events.map((e) => e.event).join(', ')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => ac.abort(),
  };
}

/** Polls `fn` until it returns a truthy value. */
export async function eventually<T>(fn: () => Promise<T> | T, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The HTTP methods a route module may export. */
export const ROUTE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type RouteMethod = (typeof ROUTE_METHODS)[number];

/**
 * Every app/api route, by its URL pattern, with the methods its module implements (read from its
 * exports; the 405 stubs re-exported under other names are not counted). Tests that must cover
 * every route (fuzz, auth matrix) fail when a new route is not in their tables.
 */
export function apiRoutes(): Map<string, RouteMethod[]> {
  const base = join(ROOT, 'app');
  const out = new Map<string, RouteMethod[]>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/^route\.(ts|tsx|js)$/.test(name)) {
        const src = readFileSync(p, 'utf8');
        const methods = ROUTE_METHODS.filter((m) => new RegExp(`export\\s+(?:const|(?:async\\s+)?function)\\s+${m}\\b`).test(src));
        out.set(`/${relative(base, dir).split(sep).join('/')}`, methods);
      }
    }
  };
  walk(join(base, 'api'));
  return out;
}
