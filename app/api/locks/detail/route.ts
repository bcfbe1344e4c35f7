import { withAuth } from '@/lib/console/auth';
import { getEventHub } from '@/lib/console/events';
import { backendIdSchema, jsonResponse, keySchema, methodNotAllowed, parseParam, queryParam } from '@/lib/console/http';
import { getLockDetail } from '@/lib/console/inventory';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export const GET = withAuth({ role: 'viewer' }, async (_request, { url }) => {
  const backend = parseParam(backendIdSchema, 'backend', queryParam(url, 'backend'));
  const key = parseParam(keySchema, 'key', queryParam(url, 'key'));
  // History is recorded by the watches: open them at the first look, if no stream did yet.
  getEventHub().ensureStarted();
  return jsonResponse(await getLockDetail(backend, key));
});

/** Any other method: 405 in the API's error shape, not Next's empty one (http.ts). */
const notAllowed = methodNotAllowed(['GET', 'HEAD']);
export { notAllowed as POST, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE };
