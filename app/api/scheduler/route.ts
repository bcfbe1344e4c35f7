import { z } from 'zod';

import { withAuth } from '@/lib/console/auth';
import { queryObject } from '@/lib/console/contention';
import { backendIdSchema, jsonResponse } from '@/lib/console/http';
import { getSchedulerOverview } from '@/lib/console/scheduler';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

const querySchema = z.object({ backend: backendIdSchema.optional() });

/** Jobs, occurrences, instances and stuck flags per backend that keeps run records: `?backend=`. */
export const GET = withAuth({ role: 'viewer' }, async (_request, { url }) => {
  const q = querySchema.parse(queryObject(url));
  return jsonResponse(await getSchedulerOverview(q));
});
