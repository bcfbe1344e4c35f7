import { z } from 'zod';

import { withAuth } from '@/lib/console/auth';
import { queryObject } from '@/lib/console/contention';
import { backendIdSchema, jsonResponse, methodNotAllowed } from '@/lib/console/http';
import { getSchedulerOverview } from '@/lib/console/scheduler';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

const querySchema = z.object({ backend: backendIdSchema.optional() });

/** Jobs, occurrences, instances and stuck flags per backend that keeps run records: `?backend=`. */
export const GET = withAuth({ role: 'viewer' }, async (_request, { url }) => {
  const q = querySchema.parse(queryObject(url));
  return jsonResponse(await getSchedulerOverview(q));
});

/** Any other method: 405 in the API's error shape, not Next's empty one (http.ts). */
const notAllowed = methodNotAllowed(['GET', 'HEAD']);
export { notAllowed as POST, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE };
