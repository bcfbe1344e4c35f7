// The one route the contract leaves open to anonymous callers (load balancers, the e2e web
// server check), so it says nothing about backends or configuration.
export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export function GET(): Response {
  return Response.json({ ok: true }, { headers: { 'Cache-Control': 'no-store' } });
}
