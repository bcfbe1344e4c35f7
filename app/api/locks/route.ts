import { withAuth } from '@/lib/console/auth';
import { backendIdSchema, filterTextSchema, intParam, jsonResponse, methodNotAllowed, parseParam, queryParam } from '@/lib/console/http';
import { DEFAULT_LIST_LIMIT, listLocks, MAX_LIST_LIMIT } from '@/lib/console/inventory';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export const GET = withAuth({ role: 'viewer' }, async (_request, { url }) => {
  const backend = queryParam(url, 'backend');
  const q = queryParam(url, 'q');
  const list = await listLocks({
    backend: backend ? parseParam(backendIdSchema, 'backend', backend) : undefined,
    q: q ? parseParam(filterTextSchema, 'q', q) : undefined,
    limit: intParam(url, 'limit', DEFAULT_LIST_LIMIT, 1, MAX_LIST_LIMIT),
  });
  return jsonResponse(list);
});

/** Any other method: 405 in the API's error shape, not Next's empty one (http.ts). */
const notAllowed = methodNotAllowed(['GET', 'HEAD']);
export { notAllowed as POST, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE };
