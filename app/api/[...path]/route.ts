import { HttpError, errorResponse } from '@/lib/console/http';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

// Unknown API paths answer in the API's error shape rather than with the HTML 404 page.
function notFound(request: Request): Response {
  return errorResponse(new HttpError(404, 'not_found', `no such API route: ${new URL(request.url).pathname}`));
}

export const GET = notFound;
export const HEAD = notFound;
export const POST = notFound;
export const PUT = notFound;
export const PATCH = notFound;
export const DELETE = notFound;
