import { withAuth } from '@/lib/console/auth';
import { jsonResponse, methodNotAllowed } from '@/lib/console/http';
import { getRegistry } from '@/lib/console/registry';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

/** Statuses at most 1 s old where the backend answers within 300 ms, else the last known. */
export const GET = withAuth({ role: 'viewer' }, async () => {
  const backends = await getRegistry().freshStatuses(1000);
  return jsonResponse({ backends });
});

/** Any other method: 405 in the API's error shape, not Next's empty one (http.ts). */
const notAllowed = methodNotAllowed(['GET', 'HEAD']);
export { notAllowed as POST, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE };
