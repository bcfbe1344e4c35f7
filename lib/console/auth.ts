import 'server-only';

/**
 * Authentication, authorization and CSRF checks, done inside every route handler through
 * {@link withAuth} (contract.md §2). `proxy.ts` only handles the `?token=` login; it is never
 * the thing that keeps anyone out, because a proxy/middleware layer can be skipped
 * (CVE-2025-29927) or have its matcher drift away from the routes.
 *
 * Credentials: `Authorization: Bearer <token>`, else the session cookie. A request that sends a
 * bearer token is judged by it alone (a wrong token is 401 even with a good cookie).
 *
 * CSRF, for every state-changing request (perf-reliability-anchors §4.2):
 *  - `Origin` present: it must be the console's own origin (the configured public URL, else the
 *    request's `Host`); `Origin: null` (sandboxed frames, some redirects) is refused, never
 *    treated as absent;
 *  - `Sec-Fetch-Site` present: it must be `same-origin` (a browser always sends it, and it cannot
 *    be forged by a page);
 *  - neither present: only a bearer-token request passes (scripts and curl send neither, and
 *    a browser cannot attach our bearer token cross-site); a cookie-authenticated request without
 *    either header is refused.
 * Route handlers also insist on `application/json` bodies (http.ts), which a cross-site form
 * cannot send.
 */
import { getConfig, getTuning, type ConsoleConfig } from './config';
import { errorResponse, HttpError } from './http';
import { readTokens, roleAllows, roleForToken, sessionCookieFrom, sessionSecret, verifySession, type Env, type Role } from './session';

export interface Principal {
  role: Role;
  via: 'bearer' | 'cookie';
  /** What the audit log records as the actor. */
  actor: string;
  /** Cookie sessions: when the login runs out. */
  expiresAt: number | null;
}

/** Who is asking, or a 401. */
export function authenticate(request: Request, env: Env = process.env, now = Date.now()): Principal {
  const tokens = readTokens(env);
  const authz = request.headers.get('authorization');
  if (authz !== null) {
    const m = /^Bearer[ ]+(\S{1,512})\s*$/i.exec(authz);
    const role = m ? roleForToken(m[1]!, tokens) : null;
    if (!role) throw new HttpError(401, 'unauthorized', 'the bearer token is not valid', { 'WWW-Authenticate': 'Bearer realm="lockdeck"' });
    return { role, via: 'bearer', actor: role, expiresAt: null };
  }
  const cookie = sessionCookieFrom(request.headers.get('cookie'));
  if (cookie) {
    const s = verifySession(cookie, tokens, sessionSecret(env), now);
    if (s) return { role: s.role, via: 'cookie', actor: s.role, expiresAt: s.expiresAt };
    throw new HttpError(401, 'unauthorized', 'the session has expired or is not valid; log in again', { 'WWW-Authenticate': 'Bearer realm="lockdeck"' });
  }
  throw new HttpError(401, 'unauthorized', 'log in, or send Authorization: Bearer <token>', { 'WWW-Authenticate': 'Bearer realm="lockdeck"' });
}

/** The console's own host (`host[:port]`) as this request names it, or the configured one. */
function ownHost(request: Request, publicOrigin: string | null): string | null {
  if (publicOrigin) return new URL(publicOrigin).host;
  return request.headers.get('host');
}

/** Throws 403 `csrf` unless the request comes from the console's own pages or a script. */
export function checkCsrf(request: Request, via: Principal['via'] | null, publicOrigin: string | null): void {
  const refuse = (why: string) => {
    throw new HttpError(403, 'csrf', `cross-site request refused: ${why}`);
  };
  const site = request.headers.get('sec-fetch-site');
  if (site !== null && site !== 'same-origin') refuse(`Sec-Fetch-Site is "${site}"`);
  const origin = request.headers.get('origin');
  if (origin !== null) {
    if (origin === 'null') refuse('Origin is "null"');
    let u: URL;
    try {
      u = new URL(origin);
    } catch {
      return refuse('Origin is not a URL');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') refuse(`Origin "${origin}" is not this console`);
    if (publicOrigin ? u.origin !== publicOrigin : u.host !== ownHost(request, null)) refuse(`Origin "${origin}" is not this console`);
    return;
  }
  if (site === 'same-origin') return;
  if (via !== 'bearer') refuse('no Origin or Sec-Fetch-Site header on a cookie-authenticated request');
}

export interface AuthOptions {
  /** The least role allowed. */
  role: Role;
  /** A state-changing request: run the CSRF check. */
  csrf?: boolean;
  /** Changes locks: refused in read-only mode (405). */
  writes?: boolean;
  /**
   * Called with every refusal before it is answered (the force-release route audits them). When
   * it throws, the request fails with 500 instead of going unrecorded.
   */
  onRefused?: (request: Request, refusal: HttpError, principal: Principal | null) => Promise<void> | void;
}

export interface RouteContext {
  principal: Principal;
  config: ConsoleConfig;
  url: URL;
}

type Handler = (request: Request, ctx: RouteContext) => Promise<Response> | Response;

/**
 * Wraps a route handler: refuses `x-middleware-subrequest`, authenticates, checks CSRF, role and
 * read-only mode, then runs `handler`, mapping anything it throws through http.ts.
 */
export function withAuth(opts: AuthOptions, handler: Handler): (request: Request) => Promise<Response> {
  return async (request: Request): Promise<Response> => {
    let principal: Principal | null = null;
    let config: ConsoleConfig;
    try {
      // Next.js once trusted this header to skip middleware (CVE-2025-29927). Nothing legitimate
      // sends it to us, so a request carrying it is refused outright.
      if (request.headers.has('x-middleware-subrequest')) {
        throw new HttpError(400, 'bad_request', 'the x-middleware-subrequest header is not accepted');
      }
      config = getConfig();
      principal = authenticate(request);
      if (opts.csrf) checkCsrf(request, principal.via, config.publicOrigin);
      if (!roleAllows(principal.role, opts.role)) {
        throw new HttpError(403, 'forbidden', `the ${principal.role} role may not do this; it needs the ${opts.role} role`);
      }
      if (opts.writes && config.readOnly) {
        throw new HttpError(405, 'read_only', `the console is read-only (${config.readOnlyBy === 'env' ? 'LOCKDECK_READ_ONLY' : 'readOnly in the configuration'})`, {
          Allow: 'GET, HEAD',
        });
      }
    } catch (err) {
      if (opts.onRefused && err instanceof HttpError) {
        try {
          await opts.onRefused(request, err, principal);
        } catch (auditErr) {
          console.error('[lockdeck] cannot record a refused request:', auditErr);
          return errorResponse(new HttpError(500, 'audit_failed', 'the attempt could not be recorded in the audit log, so it was not processed'));
        }
      }
      return errorResponse(err);
    }
    try {
      return await handler(request, { principal, config, url: new URL(request.url) });
    } catch (err) {
      return errorResponse(err);
    }
  };
}

/** Session lifetime for new logins. */
export function sessionTtlMs(): number {
  return getTuning().sessionTtlMs;
}

/** Whether cookies should carry `Secure`: the console is served over https. */
export function isSecureRequest(request: Request, publicOrigin: string | null): boolean {
  if (publicOrigin) return publicOrigin.startsWith('https:');
  return new URL(request.url).protocol === 'https:';
}
