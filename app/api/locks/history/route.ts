import { withAuth } from '@/lib/console/auth';
import { getEventHub } from '@/lib/console/events';
import { backendIdSchema, intParam, jsonResponse, keySchema, methodNotAllowed, parseParam, queryParam } from '@/lib/console/http';
import { getLockHistory } from '@/lib/console/inventory';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

/** The recorded history of a key whether or not it is held now (detail answers 404 once it is free). */
export const GET = withAuth({ role: 'viewer' }, async (_request, { url }) => {
  const backend = parseParam(backendIdSchema, 'backend', queryParam(url, 'backend'));
  const key = parseParam(keySchema, 'key', queryParam(url, 'key'));
  getEventHub().ensureStarted();
  return jsonResponse(getLockHistory(backend, key, intParam(url, 'limit', 200, 1, 200)));
});

/** Any other method: 405 in the API's error shape, not Next's empty one (http.ts). */
const notAllowed = methodNotAllowed(['GET', 'HEAD']);
export { notAllowed as POST, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE };
