import 'server-only';

/**
 * Process-wide singletons. Next compiles route handlers, `proxy.ts` and `instrumentation.ts` into
 * separate module graphs (and `next dev` re-evaluates modules on every edit), so a module-level
 * `let` would give each graph, and each hot reload, its own backend connections and event hub.
 * `globalThis` is the one object they all share within the server process.
 */
const STORE = Symbol.for('lockdeck.console.singletons');

type Store = Map<string, unknown>;

function store(): Store {
  const g = globalThis as unknown as Record<symbol, Store | undefined>;
  return (g[STORE] ??= new Map());
}

/** The value made once per process under `name`. */
export function singleton<T>(name: string, make: () => T): T {
  const s = store();
  if (!s.has(name)) s.set(name, make());
  return s.get(name) as T;
}

/** Forgets a singleton (tests, and the config after a failed load). */
export function dropSingleton(name: string): void {
  store().delete(name);
}
