import { withAuth } from '@/lib/console/auth';
import { updateInventoryGauges } from '@/lib/console/inventory';
import { getMetrics } from '@/lib/console/metrics';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export const GET = withAuth({ role: 'viewer' }, async () => {
  await updateInventoryGauges();
  const { registry } = getMetrics();
  return new Response(await registry.metrics(), { headers: { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' } });
});
