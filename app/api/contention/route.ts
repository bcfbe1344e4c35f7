import { withAuth } from '@/lib/console/auth';
import { getContention, queryObject, rankingQuerySchema } from '@/lib/console/contention';
import { jsonResponse, methodNotAllowed } from '@/lib/console/http';
import { getRegistry } from '@/lib/console/registry';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

/** The most contended locks over a window: `?window=15m|1h|6h|24h&backend=&limit=`. */
export const GET = withAuth({ role: 'viewer' }, (_request, { url }) => {
  const q = rankingQuerySchema.parse(queryObject(url));
  if (q.backend !== undefined) getRegistry().configOf(q.backend); // unknown → 400
  return jsonResponse(getContention().ranking(q));
});

/** Any other method: 405 in the API's error shape, not Next's empty one (http.ts). */
const notAllowed = methodNotAllowed(['GET', 'HEAD']);
export { notAllowed as POST, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE };
