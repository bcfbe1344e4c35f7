/**
 * Token and cookie logic, and the CSRF rule, without a server (contract.md §2).
 */
import { describe, expect, it } from 'vitest';

import { authenticate, checkCsrf } from '../../lib/console/auth';
import { HttpError } from '../../lib/console/http';
import {
  ensureTokens,
  readTokens,
  roleAllows,
  roleForToken,
  SESSION_COOKIE,
  sessionCookieFrom,
  sessionCookieHeader,
  sessionSecret,
  signSession,
  verifySession,
} from '../../lib/console/session';

const OP = 'operator-token-0123456789abcdef';
const VW = 'viewer-token-0123456789abcdef';

function env(extra: Record<string, string> = {}): Record<string, string | undefined> {
  return { LOCKDECK_OPERATOR_TOKEN: OP, LOCKDECK_VIEWER_TOKEN: VW, LOCKDECK_SESSION_SECRET: 'test-secret', ...extra };
}

function req(headers: Record<string, string>, url = 'http://127.0.0.1:3000/api/locks/release'): Request {
  return new Request(url, { method: 'POST', headers });
}

function refusal(fn: () => unknown): HttpError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HttpError);
    return err as HttpError;
  }
  throw new Error('expected a refusal');
}

describe('tokens', () => {
  it('maps each token to its role and nothing else', () => {
    const t = readTokens(env());
    expect(roleForToken(OP, t)).toBe('operator');
    expect(roleForToken(VW, t)).toBe('viewer');
    expect(roleForToken('nope', t)).toBeNull();
    expect(roleForToken(`${OP}x`, t)).toBeNull();
    expect(roleForToken(OP.slice(0, -1), t)).toBeNull();
    expect(roleForToken('', t)).toBeNull();
  });

  it('an unset token matches nothing, not even the empty string', () => {
    const t = readTokens({ LOCKDECK_VIEWER_TOKEN: VW });
    expect(t.operator).toBeNull();
    expect(roleForToken('', t)).toBeNull();
    expect(roleForToken(VW, t)).toBe('viewer');
  });

  it('with neither token set, generates a long random operator token once', () => {
    const e: Record<string, string | undefined> = {};
    const a = ensureTokens(e);
    expect(a.generatedNow).toBe(true);
    expect(a.tokens.operator).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(e.LOCKDECK_OPERATOR_TOKEN).toBe(a.tokens.operator);
    const b = ensureTokens(e);
    expect(b.generatedNow).toBe(false);
    expect(b.tokens.operator).toBe(a.tokens.operator);
    expect(ensureTokens({ LOCKDECK_VIEWER_TOKEN: VW }).generatedNow).toBe(false);
  });

  it('operator may do what viewer may, not the reverse', () => {
    expect(roleAllows('operator', 'viewer')).toBe(true);
    expect(roleAllows('viewer', 'operator')).toBe(false);
  });
});

describe('session cookie', () => {
  const e = env();
  const tokens = readTokens(e);
  const secret = sessionSecret(e);
  const now = 1_800_000_000_000;

  it('round-trips the role and expiry and never contains a token', () => {
    const v = signSession('operator', tokens, secret, now, 60_000);
    expect(verifySession(v, tokens, secret, now + 1)).toEqual({ role: 'operator', expiresAt: now + 60_000 });
    const decoded = Buffer.from(v.split('.')[0]!, 'base64url').toString();
    expect(v).not.toContain(OP);
    expect(decoded).not.toContain(OP);
    expect(decoded).not.toContain(VW);
    expect(verifySession(signSession('viewer', tokens, secret, now, 60_000), tokens, secret, now)?.role).toBe('viewer');
  });

  it('refuses an expired, tampered, foreign-secret or role-swapped cookie', () => {
    const v = signSession('viewer', tokens, secret, now, 60_000);
    expect(verifySession(v, tokens, secret, now + 60_000)).toBeNull();
    const [payload, sig] = v.split('.') as [string, string];
    const forged = Buffer.from(Buffer.from(payload, 'base64url').toString().replace('"viewer"', '"operator"')).toString('base64url');
    expect(verifySession(`${forged}.${sig}`, tokens, secret, now)).toBeNull();
    expect(verifySession(`${payload}.${sig.slice(0, -2)}AA`, tokens, secret, now)).toBeNull();
    expect(verifySession(v, tokens, sessionSecret({ LOCKDECK_SESSION_SECRET: 'other' }), now)).toBeNull();
    expect(verifySession('garbage', tokens, secret, now)).toBeNull();
    expect(verifySession('', tokens, secret, now)).toBeNull();
  });

  it('is invalidated when the token it was issued for changes', () => {
    const v = signSession('operator', tokens, secret, now, 60_000);
    const rotated = readTokens({ ...e, LOCKDECK_OPERATOR_TOKEN: 'a-brand-new-operator-token-1234' });
    expect(verifySession(v, rotated, secret, now)).toBeNull();
  });

  it('generates and keeps a per-process secret when none is configured', () => {
    const e2: Record<string, string | undefined> = {};
    const s1 = sessionSecret(e2);
    expect(e2.LOCKDECK_SESSION_SECRET).toMatch(/^[0-9a-f]{64}$/);
    expect(sessionSecret(e2).equals(s1)).toBe(true);
  });

  it('is HttpOnly, SameSite=Strict, Path=/', () => {
    const h = sessionCookieHeader('v', 3600_000, false);
    expect(h).toBe(`${SESSION_COOKIE}=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600`);
    expect(sessionCookieHeader('v', 1000, true)).toContain('; Secure');
    expect(sessionCookieFrom(`a=b; ${SESSION_COOKIE}=xyz; c=d`)).toBe('xyz');
    expect(sessionCookieFrom('a=b')).toBeNull();
  });
});

describe('authenticate', () => {
  const e = env();
  const cookie = (role: 'operator' | 'viewer') => `${SESSION_COOKIE}=${signSession(role, readTokens(e), sessionSecret(e), Date.now(), 60_000)}`;

  it('accepts a bearer token or the cookie', () => {
    expect(authenticate(req({ authorization: `Bearer ${OP}` }), e)).toMatchObject({ role: 'operator', via: 'bearer' });
    expect(authenticate(req({ authorization: `bearer ${VW}` }), e)).toMatchObject({ role: 'viewer', via: 'bearer' });
    expect(authenticate(req({ cookie: cookie('viewer') }), e)).toMatchObject({ role: 'viewer', via: 'cookie' });
  });

  it('401 without credentials, with a bad token, a bad cookie, or a bad token next to a good cookie', () => {
    expect(refusal(() => authenticate(req({}), e)).status).toBe(401);
    expect(refusal(() => authenticate(req({ authorization: 'Bearer nope' }), e)).status).toBe(401);
    expect(refusal(() => authenticate(req({ authorization: `Basic ${OP}` }), e)).status).toBe(401);
    expect(refusal(() => authenticate(req({ cookie: `${SESSION_COOKIE}=forged.sig` }), e)).status).toBe(401);
    expect(refusal(() => authenticate(req({ authorization: 'Bearer nope', cookie: cookie('operator') }), e)).status).toBe(401);
  });
});

describe('CSRF rule for mutations', () => {
  const host = { host: '127.0.0.1:3000' };

  it('accepts the own origin, same-origin fetches, and header-less bearer scripts', () => {
    expect(() => checkCsrf(req({ ...host, origin: 'http://127.0.0.1:3000' }), 'cookie', null)).not.toThrow();
    expect(() => checkCsrf(req({ ...host, 'sec-fetch-site': 'same-origin' }), 'cookie', null)).not.toThrow();
    expect(() => checkCsrf(req({ ...host, origin: 'http://127.0.0.1:3000', 'sec-fetch-site': 'same-origin' }), 'cookie', null)).not.toThrow();
    expect(() => checkCsrf(req(host), 'bearer', null)).not.toThrow();
  });

  it('refuses foreign origins, Origin: null, cross-site fetches, and header-less cookie requests', () => {
    for (const [h, via] of [
      [{ origin: 'http://evil.example' }, 'bearer'],
      [{ origin: 'http://127.0.0.1:3001' }, 'cookie'],
      [{ origin: 'null' }, 'cookie'],
      [{ origin: 'null' }, 'bearer'],
      [{ origin: 'file://' }, 'cookie'],
      [{ 'sec-fetch-site': 'cross-site' }, 'cookie'],
      [{ 'sec-fetch-site': 'same-site' }, 'cookie'],
      [{ 'sec-fetch-site': 'none' }, 'cookie'],
      [{ origin: 'http://127.0.0.1:3000', 'sec-fetch-site': 'cross-site' }, 'cookie'],
      [{}, 'cookie'],
      [{}, null],
    ] as const) {
      const r = refusal(() => checkCsrf(req({ ...host, ...h }), via, null));
      expect(r.status, JSON.stringify(h)).toBe(403);
      expect(r.code).toBe('csrf');
    }
  });

  it('with a configured public URL, only that origin is the console', () => {
    expect(() => checkCsrf(req({ host: 'internal:3000', origin: 'https://locks.example.com' }), 'cookie', 'https://locks.example.com')).not.toThrow();
    expect(refusal(() => checkCsrf(req({ host: 'internal:3000', origin: 'http://internal:3000' }), 'cookie', 'https://locks.example.com')).code).toBe('csrf');
    expect(refusal(() => checkCsrf(req({ host: 'locks.example.com', origin: 'http://locks.example.com' }), 'cookie', 'https://locks.example.com')).code).toBe('csrf');
  });
});
