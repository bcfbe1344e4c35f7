import { Suspense } from 'react';
import type { Metadata } from 'next';

import { LocksView } from '@/components/locks/locks-view';

export const metadata: Metadata = { title: 'Locks' };

// The view reads its filters from the URL (useSearchParams), which needs a Suspense boundary.
export default function LocksPage() {
  return (
    <Suspense>
      <LocksView />
    </Suspense>
  );
}
