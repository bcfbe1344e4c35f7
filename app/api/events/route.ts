import { withAuth } from '@/lib/console/auth';
import { eventStream } from '@/lib/console/events';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export const GET = withAuth(
  { role: 'viewer' },
  (request) =>
    new Response(eventStream(request.signal), {
      headers: {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-store, no-transform',
        Connection: 'keep-alive',
        // Reverse proxies (nginx) buffer responses unless told not to.
        'X-Accel-Buffering': 'no',
        'X-Content-Type-Options': 'nosniff',
      },
    }),
);
