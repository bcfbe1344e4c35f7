/**
 * Called once per server process before it serves requests: validates the configuration (an
 * invalid one stops the server with the field and the reason), makes the operator token when
 * none is configured and prints the login URL, opens the backends and the console database.
 * See lib/console/boot.ts.
 */
export async function register(): Promise<void> {
  // The console needs Node (sockets, SQLite); `next build` loads this file without serving.
  if (process.env.NEXT_RUNTIME !== 'nodejs' || process.env.NEXT_PHASE === 'phase-production-build') return;
  const { bootConsole } = await import('./lib/console/boot');
  bootConsole();
}
