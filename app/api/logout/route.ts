import { isSecureRequest, withAuth } from '@/lib/console/auth';
import { jsonResponse, methodNotAllowed } from '@/lib/console/http';
import { clearedCookieHeader } from '@/lib/console/session';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

/** Clears the session cookie. CSRF-checked (a forced logout is a nuisance), allowed when read-only. */
export const POST = withAuth({ role: 'viewer', csrf: true }, (request, { config }) =>
  jsonResponse({ ok: true }, 200, { 'Set-Cookie': clearedCookieHeader(isSecureRequest(request, config.publicOrigin)) }),
);

/** Any other method: 405 in the API's error shape, not Next's empty one (http.ts). */
const notAllowed = methodNotAllowed(['POST']);
export { notAllowed as GET, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE };
