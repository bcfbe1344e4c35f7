import { withAuth } from '@/lib/console/auth';
import { eventStream, getEventHub } from '@/lib/console/events';
import { errorResponse, HttpError, methodNotAllowed } from '@/lib/console/http';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

/**
 * Once the server is stopping, boot.ts has closed the event hub and is closing the backends, but
 * `next start` keeps accepting requests for a few seconds. A browser that reconnects in that window
 * would get a snapshot saying every backend is "closed" (down) with no locks. The closed hub
 * refuses instead (503): the browser keeps what it showed, marked as out of date, and retries
 * until a server answers.
 */
export const GET = withAuth({ role: 'viewer' }, (request) =>
  getEventHub().closed
    ? errorResponse(new HttpError(503, 'shutting_down', 'the console server is stopping; reconnect in a moment', { 'Retry-After': '2' }))
    : new Response(eventStream(request.signal), {
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

/** Any other method: 405 in the API's error shape, not Next's empty one (http.ts). */
const notAllowed = methodNotAllowed(['GET', 'HEAD']);
export { notAllowed as POST, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE };
