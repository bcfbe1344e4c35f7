import { QueryClient, defaultShouldDehydrateQuery, environmentManager } from '@tanstack/react-query';

function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        // Above zero so that data a server component prefetched is not fetched again the moment
        // it hydrates. Lock state stays fresh through refetchInterval and, later, the event
        // stream, not through staleness.
        staleTime: 5_000,
      },
      dehydrate: {
        // Also hand over queries still in flight, so a server component can start a fetch
        // without awaiting it and the browser picks up the same promise.
        shouldDehydrateQuery: (query) =>
          defaultShouldDehydrateQuery(query) || query.state.status === 'pending',
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
