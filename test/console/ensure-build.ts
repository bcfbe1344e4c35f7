/**
 * `tsx test/console/ensure-build.ts`: runs `next build` only when `.next` is older than the
 * sources (the same check the console tests use), so a suite that runs after them (e2e) can
 * reuse their build: e.g. `tsx test/console/ensure-build.ts && next start ...`.
 */
import { ensureNextBuild } from './harness';

await ensureNextBuild();
