/**
 * A plain node-zookeeper-client connection for tests that look at (or tamper with) znodes
 * directly, beside the backend under test.
 */
import zookeeper from 'node-zookeeper-client';

/** Turns one callback-style client call into a promise. */
export const rawCall = <T>(fn: (cb: (err: unknown, v?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));

/** Connects and resolves once the session is up. */
export async function connectRaw(connect: string): Promise<zookeeper.Client> {
  const raw = zookeeper.createClient(connect, { sessionTimeout: 10_000 });
  await new Promise<void>((r) => {
    raw.once('connected', () => r());
    raw.connect();
  });
  return raw;
}
