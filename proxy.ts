/**
 * Runs before every page and API request. It does two small things and keeps nobody out: every
 * route handler checks authorization itself (lib/console/auth.ts `withAuth`), because a proxy
 * layer can be bypassed (CVE-2025-29927) or have its matcher drift.
 *
 * 1. Refuses requests that carry `x-middleware-subrequest` (the header behind CVE-2025-29927;
 *    nothing legitimate sends it).
 * 2. `/?token=<token>` (any page): a valid token logs the browser in with the session cookie and
 *    redirects to the same URL without the token, so it leaves the address bar and the history;
 *    a bad token gets a 401 page and no cookie.
 */
import { NextResponse, type NextRequest } from 'next/server';

import {
  readTokens,
  roleForToken,
  sessionCookieHeader,
  sessionSecret,
  sessionTtlFromEnv,
  signSession,
} from '@/lib/console/session';

const BAD_TOKEN_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Login failed · lockdeck</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem">
<h1>This login link is not valid</h1>
<p>The token in the link does not match this console's operator or viewer token. Ask for a new link,
or check <code>LOCKDECK_OPERATOR_TOKEN</code> / <code>LOCKDECK_VIEWER_TOKEN</code> on the server.</p>
<p><a href="/">Back to the console</a></p>
</body></html>`;

export function proxy(request: NextRequest): Response {
  if (request.headers.has('x-middleware-subrequest')) {
    return Response.json(
      { error: { code: 'bad_request', message: 'the x-middleware-subrequest header is not accepted' } },
      { status: 400, headers: { 'Cache-Control': 'no-store' } },
    );
  }
  const url = request.nextUrl;
  const token = url.searchParams.get('token');
  if (token === null || url.pathname.startsWith('/api/') || request.method !== 'GET') return NextResponse.next();

  const tokens = readTokens();
  const role = token.length <= 512 ? roleForToken(token, tokens) : null;
  const headers = { 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer', 'X-Content-Type-Options': 'nosniff' };
  if (!role) {
    return new Response(BAD_TOKEN_PAGE, { status: 401, headers: { ...headers, 'Content-Type': 'text/html; charset=utf-8' } });
  }
  const clean = url.clone();
  clean.searchParams.delete('token');
  const ttl = sessionTtlFromEnv();
  const secure = url.protocol === 'https:' || (process.env.LOCKDECK_PUBLIC_URL ?? '').startsWith('https:');
  const res = NextResponse.redirect(clean, 303);
  for (const [k, v] of Object.entries(headers)) res.headers.set(k, v);
  res.headers.append('Set-Cookie', sessionCookieHeader(signSession(role, tokens, sessionSecret(), Date.now(), ttl), ttl, secure));
  return res;
}

export const config = {
  // Everything but build assets: pages for the login link, API routes for the header check.
  matcher: ['/((?!_next/static|_next/image|favicon.ico|icon.svg).*)'],
};
