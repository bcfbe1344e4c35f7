import { Suspense } from 'react';
import type { Metadata } from 'next';

import { LockContentionView } from '@/components/contention/lock-contention-view';

export const metadata: Metadata = { title: 'Lock contention' };

/** One lock's contention: `/contention/lock?backend=<id>&key=<key>&window=1h`. */
export default function LockContentionPage() {
  return (
    <Suspense>
      <LockContentionView />
    </Suspense>
  );
}
