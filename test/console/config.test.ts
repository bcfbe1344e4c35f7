/**
 * Configuration loading and validation messages (contract.md §1): an invalid file is refused with
 * `<file>: <field path>: <reason>`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { ConfigError, EMBEDDED_DEFAULT, loadConfig, loadTuning } from '../../lib/console/config';

const dir = mkdtempSync(join(tmpdir(), 'lockdeck-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function failure(content: unknown, name = 'lockdeck.config.json'): string {
  const cwd = mkdtempSync(join(dir, 'cwd-'));
  writeFileSync(join(cwd, name), typeof content === 'string' ? content : JSON.stringify(content));
  try {
    loadConfig({}, cwd);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected the configuration to be refused');
}

describe('where the configuration comes from', () => {
  it('uses the embedded default (one sqlite backend at .lockdeck/locks.db) without a file', () => {
    const cwd = mkdtempSync(join(dir, 'empty-'));
    const c = loadConfig({}, cwd);
    expect(c.source).toBe(EMBEDDED_DEFAULT);
    expect(c.backends).toEqual([{ id: 'local', type: 'sqlite', path: '.lockdeck/locks.db' }]);
    expect(c.readOnly).toBe(false);
    expect(c.dataDir).toBe(join(cwd, '.lockdeck'));
  });

  it('reads ./lockdeck.config.json, and LOCKDECK_CONFIG before it', () => {
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    writeFileSync(join(cwd, 'lockdeck.config.json'), JSON.stringify({ backends: [{ id: 'here', type: 'sqlite', path: 'a.db' }] }));
    expect(loadConfig({}, cwd).backends[0]!.id).toBe('here');
    expect(loadConfig({}, cwd).source).toBe('lockdeck.config.json');
    const other = write('other.json', { backends: [{ id: 'there', type: 'redis', url: 'redis://127.0.0.1:1' }], readOnly: true });
    const c = loadConfig({ LOCKDECK_CONFIG: other }, cwd);
    expect(c.backends[0]!.id).toBe('there');
    expect(c.readOnly).toBe(true);
    expect(c.readOnlyBy).toBe('config');
  });

  it('refuses a LOCKDECK_CONFIG path that does not exist (never falls back silently)', () => {
    expect(() => loadConfig({ LOCKDECK_CONFIG: join(dir, 'missing.json') }, dir)).toThrow(/missing\.json: cannot read the configuration.*file not found/);
  });

  it('LOCKDECK_READ_ONLY=1 makes any configuration read-only', () => {
    const cwd = mkdtempSync(join(dir, 'empty-'));
    expect(loadConfig({ LOCKDECK_READ_ONLY: '1' }, cwd)).toMatchObject({ readOnly: true, readOnlyBy: 'env' });
    expect(loadConfig({ LOCKDECK_READ_ONLY: 'true' }, cwd).readOnly).toBe(true);
    expect(loadConfig({ LOCKDECK_READ_ONLY: '0' }, cwd).readOnly).toBe(false);
  });

  it('LOCKDECK_DATA_DIR and LOCKDECK_PUBLIC_URL', () => {
    const cwd = mkdtempSync(join(dir, 'empty-'));
    const c = loadConfig({ LOCKDECK_DATA_DIR: 'state', LOCKDECK_PUBLIC_URL: 'https://locks.example.com/console' }, cwd);
    expect(c.dataDir).toBe(join(cwd, 'state'));
    expect(c.publicOrigin).toBe('https://locks.example.com');
    expect(() => loadConfig({ LOCKDECK_PUBLIC_URL: 'ftp://x' }, cwd)).toThrow(/LOCKDECK_PUBLIC_URL: must be an http/);
  });
});

describe('validation messages name the file, the field and the reason', () => {
  it('a redis url that is not a redis:// URL', () => {
    const msg = failure({ backends: [{ id: 'local', type: 'sqlite', path: 'a.db' }, { id: 'cache', type: 'redis', url: 'http://127.0.0.1:6379' }] });
    expect(msg).toBe('lockdeck.config.json: backends[1].url: must be a redis:// or rediss:// URL');
  });

  it('duplicate ids', () => {
    const msg = failure({ backends: [{ id: 'a', type: 'sqlite', path: 'a.db' }, { id: 'a', type: 'sqlite', path: 'b.db' }] });
    expect(msg).toBe('lockdeck.config.json: backends[1].id: duplicate id "a" (also backends[0].id)');
  });

  it('a bad id, an unknown field, an unknown type', () => {
    expect(failure({ backends: [{ id: 'Bad_Id', type: 'sqlite', path: 'a.db' }] })).toBe('lockdeck.config.json: backends[0].id: must match [a-z0-9-]{1,40}');
    expect(failure({ backends: [{ id: 'a', type: 'sqlite', path: 'a.db', pth: 'x' }] })).toBe('lockdeck.config.json: backends[0].pth: unknown field');
    expect(failure({ backends: [{ id: 'a', type: 'mongo' }] })).toBe(
      'lockdeck.config.json: backends[0].type: must be one of redis, sqlite, zookeeper, etcd, dynamodb',
    );
    expect(failure({ backends: [{ id: 'a', type: 'sqlite', path: 'a.db' }], readonly: true })).toBe('lockdeck.config.json: readonly: unknown field');
  });

  it('a redis backend with neither url, urls nor sentinel', () => {
    expect(failure({ backends: [{ id: 'r', type: 'redis' }] })).toBe(
      'lockdeck.config.json: backends[0]: give exactly one of url, urls (Redlock masters) or sentinel',
    );
  });

  it('no backends, wrong types, not JSON, not an object', () => {
    expect(failure({ backends: [] })).toBe('lockdeck.config.json: backends: list at least one backend');
    expect(failure({ backends: [{ id: 'a', type: 'sqlite', path: 'a.db' }], readOnly: 'yes' })).toMatch(/^lockdeck\.config\.json: readOnly: .*boolean/);
    expect(failure('{"backends": [')).toMatch(/^lockdeck\.config\.json: not valid JSON: /);
    expect(failure('[]')).toMatch(/^lockdeck\.config\.json: \(top level\): .*object/);
  });

  it('several problems are all reported, one per line', () => {
    const msg = failure({ backends: [{ id: 'a', type: 'redis', url: 'x' }, { id: 'a', type: 'sqlite' }] });
    expect(msg.split('\n')).toEqual(
      expect.arrayContaining([
        'lockdeck.config.json: backends[0].url: must be a redis:// or rediss:// URL',
        expect.stringMatching(/^lockdeck\.config\.json: backends\[1\]\.path: /),
      ]),
    );
  });
});

describe('tuning variables', () => {
  it('defaults, overrides and refusals', () => {
    expect(loadTuning({})).toMatchObject({ backendTimeoutMs: 3000, healthIntervalMs: 5000, releasesPerMinute: 10, heartbeatMs: 15_000 });
    expect(loadTuning({ LOCKDECK_RELEASE_RATE_LIMIT: '3' }).releasesPerMinute).toBe(3);
    expect(() => loadTuning({ LOCKDECK_BACKEND_TIMEOUT_MS: 'soon' })).toThrow('LOCKDECK_BACKEND_TIMEOUT_MS: must be an integer from 50 to 120000, got "soon"');
  });
});
