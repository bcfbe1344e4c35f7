import { Suspense } from 'react';
import type { Metadata } from 'next';

import { ContentionView } from '@/components/contention/contention-view';

export const metadata: Metadata = { title: 'Contention' };

// The window lives in the URL (useSearchParams), which needs a Suspense boundary.
export default function ContentionPage() {
  return (
    <Suspense>
      <ContentionView />
    </Suspense>
  );
}
