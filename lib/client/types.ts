/**
 * The API's shapes as the browser sees them. Type-only re-exports of the server's own definitions
 * (erased at build time, so no server module reaches the browser bundle), plus the few answers
 * that have no named type on the server side.
 */
export type {
  BackendType,
  Capabilities,
  HolderInfo,
  LockEventType,
  LockHealth,
  LockInfo,
  LockKind,
  WaiterInfo,
} from '@/lib/locks/types';
export type { BackendStatus } from '@/lib/console/registry';
export type { HistoryEvent } from '@/lib/console/history';
export type { AuditEntry, AuditResult } from '@/lib/console/audit';
export type { LockList } from '@/lib/console/inventory';
export type { PingEvent, SnapshotEvent } from '@/lib/console/events';
export type {
  ContentionRanking,
  Distribution,
  HistogramBucket,
  LockContention,
  RankedLock,
  SeriesPoint,
  WindowName,
} from '@/lib/console/contention';
export type {
  InstanceView,
  JobView,
  OccurrenceRun,
  OccurrenceState,
  OccurrenceView,
  SchedulerBackendView,
  SchedulerOverview,
  StuckReason,
} from '@/lib/console/scheduler';

import type { Role } from '@/lib/console/session';
import type { LockInfo } from '@/lib/locks/types';

export type { Role };

/** `GET /api/session`. */
export interface SessionInfo {
  role: Role;
  readOnly: boolean;
  /** Operator and not read-only: the release buttons are shown. */
  canRelease: boolean;
  via?: 'bearer' | 'cookie';
  expiresAt: number | null;
}

/** `POST /api/locks/release` body. */
export interface ReleaseRequest {
  backend: string;
  key: string;
  fence?: string;
  owner?: string;
  valueHash?: string;
  /** `revoke-lease`: end the holder's whole lease (etcd), not only this lock's key. */
  action?: 'release' | 'revoke-lease';
  reason: string;
}

/** `POST /api/locks/release` 200 answer. */
export interface ReleaseAnswer {
  released: true;
  lock: LockInfo;
  /** After `action: "revoke-lease"`: the lease ended and every key it carried. */
  revoked?: { lease: string; keys: string[] };
}
