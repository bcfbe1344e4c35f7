/**
 * Who may do what (contract.md §2), as one table: every API route × every method it implements
 * (and the ones it does not) × every way of presenting credentials, against a real `next start`.
 * Each cell is an exact status (and error code); a route in app/api that the table does not
 * know fails the first test.
 *
 * What a column stands for:
 *  - bearer tokens as scripts send them (no Origin, no Sec-Fetch-Site);
 *  - the session cookie as a browser sends it, from our own origin, a foreign one, `Origin: null`
 *    (sandboxed frames), or with neither header (an old browser or a non-browser replaying it);
 *  - `x-middleware-subrequest` (CVE-2025-29927: Next once skipped middleware for it), with and
 *    without a token: refused outright.
 * Release cells use a real lock each: an allowed cell must release it, a refused one must not.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createSqliteBackend } from '../../lib/backends/sqlite';
import type { LockBackend, LockHandle } from '../../lib/locks/types';
import { apiRoutes, startConsole, type ConsoleServer } from './harness';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
type Method = (typeof METHODS)[number];

/** The routes and the methods each implements, among METHODS (GET brings HEAD with it). */
function routeMethods(): Map<string, Method[]> {
  const out = new Map<string, Method[]>();
  for (const [route, all] of apiRoutes()) {
    const methods = METHODS.filter((m) => all.includes(m));
    if (methods.includes('GET') && !methods.includes('HEAD')) methods.splice(1, 0, 'HEAD');
    out.set(route, methods);
  }
  return out;
}


const OP = `op-${randomBytes(12).toString('hex')}`;
const VW = `vw-${randomBytes(12).toString('hex')}`;
const RUN = randomBytes(3).toString('hex');
const EVIL = 'http://evil.example';

let server: ConsoleServer;
let dir: string;
let local: LockBackend;
let opCookie: string;
let vwCookie: string;
const handles: LockHandle[] = [];

/** The columns: how the request presents itself. */
const CREDS = {
  none: () => ({}),
  viewer: () => ({ authorization: `Bearer ${VW}` }),
  operator: () => ({ authorization: `Bearer ${OP}` }),
  'bad token': () => ({ authorization: 'Bearer not-a-token' }),
  'operator + foreign Origin': () => ({ authorization: `Bearer ${OP}`, origin: EVIL }),
  'operator + Origin: null': () => ({ authorization: `Bearer ${OP}`, origin: 'null' }),
  'operator cookie + own Origin': () => ({ cookie: opCookie, origin: server.url }),
  'operator cookie + Sec-Fetch-Site: same-origin': () => ({ cookie: opCookie, 'sec-fetch-site': 'same-origin' }),
  'operator cookie + foreign Origin': () => ({ cookie: opCookie, origin: EVIL }),
  'operator cookie + Origin: null': () => ({ cookie: opCookie, origin: 'null' }),
  'operator cookie + Sec-Fetch-Site: cross-site': () => ({ cookie: opCookie, 'sec-fetch-site': 'cross-site' }),
  'operator cookie, no Origin or Sec-Fetch-Site': () => ({ cookie: opCookie }),
  'viewer cookie + own Origin': () => ({ cookie: vwCookie, origin: server.url }),
  'x-middleware-subrequest + operator': () => ({ authorization: `Bearer ${OP}`, 'x-middleware-subrequest': 'middleware:middleware:middleware:middleware:middleware' }),
  'x-middleware-subrequest': () => ({ 'x-middleware-subrequest': 'src/middleware:src/middleware:src/middleware:src/middleware:src/middleware' }),
} satisfies Record<string, () => Record<string, string>>;
type Cred = keyof typeof CREDS;

/** `status` or `status code`: what a cell must answer. */
type Cell = string;

const SUBREQ = { 'x-middleware-subrequest + operator': '400 bad_request', 'x-middleware-subrequest': '400 bad_request' } satisfies Partial<Record<Cred, Cell>>;

/** Anyone (health). */
const open = (): Record<Cred, Cell> => ({ ...fill('200'), ...SUBREQ });

/** A read (GET) for viewers: any valid credential, whatever the Origin (reads are not CSRF-checked; no CORS header lets a foreign page read the answer). */
const read = (): Record<Cred, Cell> => ({ ...fill('200'), none: '401 unauthorized', 'bad token': '401 unauthorized', ...SUBREQ });

/** A mutation that needs `role`: credentials first, then the CSRF check, then the role. */
const mutation = (role: 'viewer' | 'operator', ok: Cell): Record<Cred, Cell> => ({
  none: '401 unauthorized',
  viewer: role === 'viewer' ? ok : '403 forbidden',
  operator: ok,
  'bad token': '401 unauthorized',
  'operator + foreign Origin': '403 csrf',
  'operator + Origin: null': '403 csrf',
  'operator cookie + own Origin': ok,
  'operator cookie + Sec-Fetch-Site: same-origin': ok,
  'operator cookie + foreign Origin': '403 csrf',
  'operator cookie + Origin: null': '403 csrf',
  'operator cookie + Sec-Fetch-Site: cross-site': '403 csrf',
  'operator cookie, no Origin or Sec-Fetch-Site': '403 csrf',
  'viewer cookie + own Origin': role === 'viewer' ? ok : '403 forbidden',
  ...SUBREQ,
});

/**
 * Login (`{"token": OP}` in the body; the headers' own credentials play no part): only a request
 * from our own pages may set a session, even for a valid token (login CSRF), and a script
 * without Origin is refused too (it has the token: it can send it as a bearer instead).
 */
const login = (): Record<Cred, Cell> => ({
  ...fill('403 csrf'),
  'operator cookie + own Origin': '200',
  'operator cookie + Sec-Fetch-Site: same-origin': '200',
  'viewer cookie + own Origin': '200',
  ...SUBREQ,
});

const notAllowed = (): Record<Cred, Cell> => ({ ...fill('405 method_not_allowed'), ...SUBREQ });

function fill(cell: Cell): Record<Cred, Cell> {
  return Object.fromEntries(Object.keys(CREDS).map((c) => [c, cell])) as Record<Cred, Cell>;
}

interface RouteSpec {
  /** Query string or path suffix that makes an allowed call succeed. */
  path: string;
  /** Expected cells for each implemented method. */
  methods: Partial<Record<Method, () => Record<Cred, Cell>>>;
  body?: () => unknown;
}

const HELD = `am-held-${RUN}`;

const TABLE: Record<string, RouteSpec> = {
  '/api/health': { path: '/api/health', methods: { GET: open, HEAD: open } },
  '/api/backends': { path: '/api/backends', methods: { GET: read, HEAD: read } },
  '/api/locks': { path: '/api/locks', methods: { GET: read, HEAD: read } },
  '/api/locks/detail': { path: `/api/locks/detail?backend=local&key=${HELD}`, methods: { GET: read, HEAD: read } },
  '/api/locks/history': { path: `/api/locks/history?backend=local&key=${HELD}`, methods: { GET: read, HEAD: read } },
  '/api/locks/release': { path: '/api/locks/release', methods: { POST: () => mutation('operator', '200') } },
  '/api/events': { path: '/api/events', methods: { GET: read, HEAD: read } },
  '/api/audit': { path: '/api/audit', methods: { GET: read, HEAD: read } },
  '/api/metrics': { path: '/api/metrics', methods: { GET: read, HEAD: read } },
  '/api/session': { path: '/api/session', methods: { GET: read, HEAD: read } },
  '/api/login': { path: '/api/login', methods: { POST: login }, body: () => ({ token: OP }) },
  '/api/logout': { path: '/api/logout', methods: { POST: () => mutation('viewer', '200') } },
  '/api/contention': { path: '/api/contention', methods: { GET: read, HEAD: read } },
  '/api/contention/lock': { path: `/api/contention/lock?backend=local&key=${HELD}`, methods: { GET: read, HEAD: read } },
  '/api/scheduler': { path: '/api/scheduler', methods: { GET: read, HEAD: read } },
  // Unknown API paths say only "no such route", to anyone.
  '/api/[...path]': {
    path: '/api/no/such/route',
    methods: Object.fromEntries(METHODS.map((m) => [m, () => ({ ...fill('404 not_found'), ...SUBREQ })])),
  },
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lockdeck-authz-'));
  const sqlitePath = join(dir, 'locks.db');
  local = createSqliteBackend({ id: 'local', type: 'sqlite', path: sqlitePath });
  handles.push(await local.acquire(HELD, { ttlMs: 120_000 }));
  server = await startConsole({
    config: { backends: [{ id: 'local', type: 'sqlite', path: sqlitePath }] },
    env: { LOCKDECK_OPERATOR_TOKEN: OP, LOCKDECK_VIEWER_TOKEN: VW, LOCKDECK_RELEASE_RATE_LIMIT: '100000' },
  });
  const cookieFor = async (token: string) => {
    const res = await server.fetch(`/?token=${token}`);
    expect(res.status).toBe(303);
    return res.headers.get('set-cookie')!.split(';')[0]!;
  };
  opCookie = await cookieFor(OP);
  vwCookie = await cookieFor(VW);
}, 600_000);

afterAll(async () => {
  await Promise.allSettled(handles.map((h) => h.release()));
  await local?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Sends one cell's request and says what it got, as `status` or `status code`. */
async function ask(route: string, spec: RouteSpec, method: Method, cred: Cred): Promise<{ got: Cell; cors: string | null }> {
  const headers: Record<string, string> = { ...CREDS[cred]() };
  let body: string | undefined;
  let lock: LockHandle | undefined;
  if (method === 'POST' || method === 'PUT' || method === 'PATCH' || method === 'DELETE') {
    headers['content-type'] = 'application/json';
    if (route === '/api/locks/release') {
      lock = await local.acquire(`am-${method}-${cred}-${RUN}`, { ttlMs: 60_000 });
      handles.push(lock);
      body = JSON.stringify({ backend: 'local', key: lock.name, fence: lock.fence, reason: `auth matrix: ${cred}` });
    } else {
      body = JSON.stringify(spec.body?.() ?? {});
    }
  }
  const ac = new AbortController();
  const res = await fetch(`${server.url}${spec.path}`, { method, headers, body, redirect: 'manual', signal: ac.signal });
  let code = '';
  if (res.status >= 400 && method !== 'HEAD') {
    const b = (await res.json()) as { error?: { code?: string; message?: string } };
    expect(typeof b.error?.message, `${method} ${route} / ${cred}`).toBe('string');
    code = ` ${b.error?.code}`;
  } else if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
    ac.abort();
  } else {
    await res.arrayBuffer();
  }
  if (lock) {
    // The answer and the store agree: released exactly when allowed.
    const now = await local.get(lock.name);
    expect(now === null, `${method} ${route} / ${cred}: answered ${res.status}, lock ${now ? 'still held' : 'gone'}`).toBe(res.status === 200);
  }
  return { got: `${res.status}${code}`, cors: res.headers.get('access-control-allow-origin') };
}

describe('auth matrix', () => {
  it('covers every API route and exactly the methods each one implements', () => {
    const routes = routeMethods();
    expect([...routes.keys()].sort(), 'a route in app/api is missing from the auth matrix (or the matrix names one that is gone)').toEqual(Object.keys(TABLE).sort());
    for (const [route, methods] of routes) expect(Object.keys(TABLE[route]!.methods).sort(), route).toEqual([...methods].sort());
  });

  for (const [route, spec] of Object.entries(TABLE)) {
    it(`${route}: each method × each credential gets exactly the status the contract allows`, async () => {
      const implemented = new Set(routeMethods().get(route) ?? []);
      const expected: Record<string, Cell> = {};
      const actual: Record<string, Cell> = {};
      for (const method of METHODS) {
        const cells = implemented.has(method) ? spec.methods[method]!() : notAllowed();
        for (const cred of Object.keys(CREDS) as Cred[]) {
          const { got, cors } = await ask(route, spec, method, cred);
          expected[`${method} / ${cred}`] = method === 'HEAD' ? cells[cred].split(' ')[0]! : cells[cred];
          actual[`${method} / ${cred}`] = got;
          expect(cors, `${method} ${route} / ${cred}: no CORS grant to anyone`).toBeNull();
        }
      }
      expect(actual).toEqual(expected);
    }, 60_000);
  }

  it('the held lock the reads looked at is untouched', async () => {
    const h = handles[0]!;
    expect(h.held).toBe(true);
    expect((await local.get(HELD))?.fence).toBe(h.fence);
  });
});
