import { withAuth } from '@/lib/console/auth';
import { getContention, lockQuerySchema, queryObject } from '@/lib/console/contention';
import { jsonResponse, methodNotAllowed } from '@/lib/console/http';
import { getRegistry } from '@/lib/console/registry';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

/** One lock's series and distributions over a window: `?backend=&key=&window=`. */
export const GET = withAuth({ role: 'viewer' }, (_request, { url }) => {
  const q = lockQuerySchema.parse(queryObject(url));
  getRegistry().configOf(q.backend); // unknown → 400
  return jsonResponse(getContention().lockStats(q.backend, q.key, q.window));
});

/** Any other method: 405 in the API's error shape, not Next's empty one (http.ts). */
const notAllowed = methodNotAllowed(['GET', 'HEAD']);
export { notAllowed as POST, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE };
