import 'server-only';

/**
 * `POST /api/login` with `{"token"}`: checks the token and sets the session cookie, for a login
 * form. Same rules as the `/?token=` link in proxy.ts; CSRF-checked like every mutation, so a
 * foreign page cannot log a browser into someone else's session.
 */
import { z } from 'zod';

import { checkCsrf, isSecureRequest, sessionTtlMs } from './auth';
import { getConfig } from './config';
import { errorResponse, HttpError, jsonResponse, readJsonBody } from './http';
import { readTokens, roleForToken, sessionCookieHeader, sessionSecret, signSession } from './session';

const bodySchema = z.object({ token: z.string({ error: 'is required' }).min(1, 'is required').max(512, 'is too long') }).strict();

export async function login(request: Request): Promise<Response> {
  try {
    if (request.headers.has('x-middleware-subrequest')) {
      throw new HttpError(400, 'bad_request', 'the x-middleware-subrequest header is not accepted');
    }
    const config = getConfig();
    checkCsrf(request, null, config.publicOrigin);
    const { token } = bodySchema.parse(await readJsonBody(request));
    const tokens = readTokens();
    const role = roleForToken(token, tokens);
    if (!role) throw new HttpError(401, 'unauthorized', 'the token is not valid');
    const ttl = sessionTtlMs();
    const now = Date.now();
    const cookie = sessionCookieHeader(signSession(role, tokens, sessionSecret(), now, ttl), ttl, isSecureRequest(request, config.publicOrigin));
    return jsonResponse({ role, readOnly: config.readOnly, expiresAt: now + ttl }, 200, { 'Set-Cookie': cookie });
  } catch (err) {
    return errorResponse(err);
  }
}
