import { Badge } from '@/components/ui/badge';
import type { BackendStatus } from '@/lib/client/types';

/** Up (with its latency) or down (with why, in the title). */
export function BackendStatusBadge({ backend }: { backend: Pick<BackendStatus, 'status' | 'error' | 'checkedAt'> }) {
  if (backend.status === 'up') return <Badge tone="success">Up</Badge>;
  if (backend.checkedAt === null) return <Badge tone="neutral">Checking…</Badge>;
  return (
    <Badge tone="danger" title={backend.error}>
      Down
    </Badge>
  );
}

/** "0.4 ms", "12 ms", "1.2 s". */
export function formatLatency(ms: number | undefined): string {
  if (ms === undefined) return '—';
  if (ms < 0.1) return '<0.1 ms';
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}
