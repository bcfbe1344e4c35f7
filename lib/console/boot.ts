import 'server-only';

/**
 * Server start-up, called once per process from `instrumentation.ts` `register()`:
 *  1. loads and validates the configuration and the tuning variables; an invalid one stops the
 *     process with the message that names the field (contract.md §1);
 *  2. makes sure a token exists; with none configured, generates an operator token and prints
 *     the login URL that carries it;
 *  3. opens console.db and the backends (connections in the background; a backend that is down
 *     does not stop the console), starts the health loop and the event hub (watches and
 *     reconcile), so history and contention statistics accumulate from server start;
 *  4. closes everything on SIGTERM/SIGINT.
 * Everything it makes is a globalThis singleton, so the route handlers' module graph uses the
 * same objects; anything the routes need is also made lazily if `register()` never ran.
 */
import { ConfigError, getConfig, getTuning } from './config';
import { getConsoleDb } from './db';
import { getEventHub } from './events';
import { getRegistry } from './registry';
import { ensureTokens, sessionSecret } from './session';
import { singleton } from './singleton';

function log(line: string): void {
  process.stdout.write(`[lockdeck] ${line}\n`);
}

/** The URL a person opens to reach this server, as Next printed it (or the configured one). */
function serverOrigin(publicOrigin: string | null): string {
  if (publicOrigin) return publicOrigin;
  // Set by `next start`/`next dev` once the server listens (next/dist/server/lib/start-server).
  const fromNext = process.env.__NEXT_PRIVATE_ORIGIN;
  if (fromNext) return fromNext;
  return `http://localhost:${process.env.PORT ?? '3000'}`;
}

export function bootConsole(): void {
  singleton('booted', () => {
    let config;
    try {
      config = getConfig();
      getTuning();
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`[lockdeck] invalid configuration, not starting:\n${err.message}\n`);
        process.exit(1);
      }
      throw err;
    }
    const { tokens, generatedNow } = ensureTokens();
    sessionSecret();
    try {
      getConsoleDb();
    } catch (err) {
      process.stderr.write(`[lockdeck] cannot open ${config.dataDir}/console.db, not starting: ${(err as Error).message}\n`);
      process.exit(1);
    }
    const registry = getRegistry();
    log(
      `config: ${config.source}; backends: ${config.backends.map((b) => `${b.id} (${b.type})`).join(', ')}; ` +
        `read-only: ${config.readOnly ? `yes (${config.readOnlyBy})` : 'no'}; data: ${config.dataDir}`,
    );
    if (generatedNow) {
      log('no LOCKDECK_OPERATOR_TOKEN or LOCKDECK_VIEWER_TOKEN is set: generated an operator token for this run.');
      log(`log in at ${serverOrigin(config.publicOrigin)}/?token=${encodeURIComponent(tokens.operator!)}`);
    } else {
      for (const [name, t] of [['LOCKDECK_OPERATOR_TOKEN', tokens.operator], ['LOCKDECK_VIEWER_TOKEN', tokens.viewer]] as const) {
        if (t && t.length < 16) log(`warning: ${name} is only ${t.length} characters; use 16 or more random characters`);
      }
    }

    getEventHub().ensureStarted();

    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      getEventHub().close();
      void registry.close().finally(() => {
        try {
          getConsoleDb().close();
        } catch {
          // already closed
        }
      });
    };
    // Next.js exits the process itself after its own cleanup; these only close our connections.
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    return true;
  });
}
