import { withAuth } from '@/lib/console/auth';
import { auditRefusedRelease, handleRelease } from '@/lib/console/release';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

/** Operator only; CSRF-checked; refused in read-only mode; every attempt is audited. */
export const POST = withAuth({ role: 'operator', csrf: true, writes: true, onRefused: auditRefusedRelease }, (request, { principal }) =>
  handleRelease(request, principal),
);
