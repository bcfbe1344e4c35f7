import { withAuth } from '@/lib/console/auth';
import { updateInventoryGauges } from '@/lib/console/inventory';
import { getMetrics } from '@/lib/console/metrics';
import { methodNotAllowed } from '@/lib/console/http';
import { getRegistry } from '@/lib/console/registry';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export const GET = withAuth({ role: 'viewer' }, async () => {
  await updateInventoryGauges();
  getRegistry().updateDiscoveryGauges();
  const { registry } = getMetrics();
  return new Response(await registry.metrics(), { headers: { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' } });
});

/** Any other method: 405 in the API's error shape, not Next's empty one (http.ts). */
const notAllowed = methodNotAllowed(['GET', 'HEAD']);
export { notAllowed as POST, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE };
