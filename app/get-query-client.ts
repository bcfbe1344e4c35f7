import { MutationCache, QueryCache, QueryClient, defaultShouldDehydrateQuery, environmentManager } from '@tanstack/react-query';

import { isApiError, redirectToLogin } from '@/lib/client/api';

/** A 401 from any API call means the session is gone: off to the login page. */
function onError(err: unknown): void {
  if (isApiError(err, 401)) redirectToLogin();
}

function makeQueryClient(): QueryClient {
  return new QueryClient({
    queryCache: new QueryCache({ onError }),
    mutationCache: new MutationCache({ onError }),
    defaultOptions: {
      queries: {
        // Lock state stays fresh through the event stream (lib/client/events.ts), not through
        // staleness; this only keeps a remount from refetching what just arrived.
        staleTime: 5_000,
        // 4xx answers are decisions, not glitches: do not ask again.
        retry: (count, err) => !(isApiError(err) && err.status >= 400 && err.status < 500) && count < 2,
      },
      dehydrate: {
        // Also hand over queries still in flight, so a server component can start a fetch
        // without awaiting it and the browser picks up the same promise.
        shouldDehydrateQuery: (query) => defaultShouldDehydrateQuery(query) || query.state.status === 'pending',
      },
    },
  });
}

let browserQueryClient: QueryClient | undefined;

/**
 * On the server, a new client per request: a shared one would leak one user's cached data into
 * another's render. In the browser, one client for the page's lifetime: if React suspends during
 * the first render and no Suspense boundary sits below the provider, it throws away the
 * component's state, and a client kept in state would be re-created and lose its cache.
 */
export function getQueryClient(): QueryClient {
  if (environmentManager.isServer()) return makeQueryClient();
  browserQueryClient ??= makeQueryClient();
  return browserQueryClient;
}
