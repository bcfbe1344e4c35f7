/**
 * Server-wide modes (contract.md §1, §2): read-only, the generated operator token with its login
 * URL (and the embedded default configuration), the force-release rate limit, and a
 * configuration that must stop the server.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { eventually, runUntilExit, startConsole, type ConsoleServer } from './harness';

const OP = `op-${randomBytes(12).toString('hex')}`;
const VW = `vw-${randomBytes(12).toString('hex')}`;
const JSON_HEADERS = { 'content-type': 'application/json' };

describe('read-only mode', () => {
  let server: ConsoleServer;

  beforeAll(async () => {
    server = await startConsole({
      config: { backends: [{ id: 'local', type: 'sqlite', path: 'ro/locks.db' }], readOnly: true },
      env: { LOCKDECK_OPERATOR_TOKEN: OP, LOCKDECK_VIEWER_TOKEN: VW },
    });
  }, 600_000);
  afterAll(() => server?.stop());

  it('refuses force-release with 405 read_only, audited, and says so in /api/session', async () => {
    const res = await server.fetch('/api/locks/release', {
      method: 'POST',
      token: OP,
      headers: JSON_HEADERS,
      body: JSON.stringify({ backend: 'local', key: 'job', reason: 'try anyway' }),
    });
    expect(res.status).toBe(405);
    expect(await res.json()).toEqual({ error: { code: 'read_only', message: expect.stringContaining('read-only') } });
    expect(await (await server.fetch('/api/session', { token: OP })).json()).toMatchObject({ role: 'operator', readOnly: true, canRelease: false });
    const audit = (await (await server.fetch('/api/audit', { token: VW })).json()) as { entries: Array<Record<string, unknown>> };
    expect(audit.entries[0]).toMatchObject({ actor: 'operator', backend: 'local', key: 'job', result: 'refused', status: 405, code: 'read_only', reason: 'try anyway' });
    expect(server.stdout.some((l) => l.includes('"lockdeck":"audit"') && l.includes('"read_only"'))).toBe(true);
  });

  it('reads still work, and a viewer is still refused as a viewer first', async () => {
    expect((await server.fetch('/api/locks', { token: VW })).status).toBe(200);
    expect((await server.fetch('/api/backends', { token: VW })).status).toBe(200);
    const res = await server.fetch('/api/locks/release', { method: 'POST', token: VW, headers: JSON_HEADERS, body: '{}' });
    expect(res.status).toBe(403);
  });

  it('logging out is not a lock mutation and still works', async () => {
    const login = await server.fetch(`/?token=${OP}`);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const res = await server.fetch('/api/logout', { method: 'POST', headers: { cookie, origin: server.url } });
    expect(res.status).toBe(200);
  });
});

describe('no token configured', () => {
  let server: ConsoleServer;

  beforeAll(async () => {
    // No LOCKDECK_CONFIG either: the embedded default, relative to the server's working dir.
    server = await startConsole({ env: { LOCKDECK_RELEASE_RATE_LIMIT: '3' } });
  }, 600_000);
  afterAll(() => server?.stop());

  it('generates an operator token at start and prints a login URL that carries it', async () => {
    const line = await eventually(() => server.stdout.find((l) => l.includes('/?token=')), 5000, 'the login URL');
    const m = /(http:\/\/127\.0\.0\.1:(\d+))\/\?token=([A-Za-z0-9_%-]+)/.exec(line);
    expect(m, line).toBeTruthy();
    expect(Number(m![2])).toBe(server.port);
    const token = decodeURIComponent(m![3]!);
    expect(token.length).toBeGreaterThanOrEqual(32);

    expect((await server.fetch('/api/locks')).status).toBe(401);
    expect(await (await server.fetch('/api/session', { token })).json()).toMatchObject({ role: 'operator', readOnly: false });
    const login = await server.fetch(`/?token=${encodeURIComponent(token)}`);
    expect(login.status).toBe(303);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    expect((await server.fetch('/api/session', { headers: { cookie } })).status).toBe(200);
  });

  it('uses the embedded default: one sqlite backend "local" at .lockdeck/locks.db', async () => {
    const token = decodeURIComponent(/\?token=(\S+)/.exec(server.stdout.find((l) => l.includes('/?token='))!)![1]!);
    const { backends } = (await (await server.fetch('/api/backends', { token })).json()) as { backends: Array<Record<string, unknown>> };
    expect(backends).toEqual([expect.objectContaining({ id: 'local', type: 'sqlite', status: 'up' })]);
    expect(existsSync(join(server.dir, '.lockdeck', 'locks.db'))).toBe(true);
  });

  it('rate-limits force-release per actor (429 in the error shape, audited)', async () => {
    const token = decodeURIComponent(/\?token=(\S+)/.exec(server.stdout.find((l) => l.includes('/?token='))!)![1]!);
    const attempt = () =>
      server.fetch('/api/locks/release', { method: 'POST', token, headers: JSON_HEADERS, body: JSON.stringify({ backend: 'local', key: 'nothing-here', reason: 'r' }) });
    for (let i = 0; i < 3; i++) expect((await attempt()).status).toBe(404);
    const limited = await attempt();
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await limited.json()).toEqual({ error: { code: 'rate_limited', message: expect.any(String) } });
    const audit = (await (await server.fetch('/api/audit?result=refused', { token })).json()) as { entries: Array<Record<string, unknown>> };
    expect(audit.entries[0]).toMatchObject({ key: 'nothing-here', status: 429, code: 'rate_limited' });
  });
});

describe('an invalid configuration', () => {
  it('stops the server with a message that names the field and the reason', async () => {
    const { code, output } = await runUntilExit({
      config: { backends: [{ id: 'local', type: 'sqlite', path: 'a.db' }, { id: 'cache', type: 'redis', url: 'http://127.0.0.1:6379' }] },
    });
    expect(code).not.toBe(0);
    expect(output).toContain('lockdeck.config.json: backends[1].url: must be a redis:// or rediss:// URL');
  });
});
