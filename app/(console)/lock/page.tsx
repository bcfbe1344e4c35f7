import { Suspense } from 'react';
import type { Metadata } from 'next';

import { LockDetailView } from '@/components/locks/lock-detail-view';

export const metadata: Metadata = { title: 'Lock' };

/**
 * One lock: `/lock?backend=<id>&key=<key>`. Keys hold slashes, colons and spaces (`/locks/report`,
 * `job-lock:default:nightly`); as query parameters they need no escaping rules of our own, where
 * path segments would be normalised by browsers and proxies (`//`, `..`).
 */
export default function LockPage() {
  return (
    <Suspense>
      <LockDetailView />
    </Suspense>
  );
}
