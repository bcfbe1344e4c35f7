/**
 * Redis glob patterns for `SCAN ... MATCH`: a safe subset, escaping of plain text, and the same
 * matching on our side (to check that a key named in a request lies where locks are configured).
 *
 * Why a subset: Redis matches globs with a backtracking matcher (`stringmatchlen` in
 * redis/redis:src/util.c). CVE-2022-36021 (fixed in 6.0.18 / 6.2.11 / 7.0.9) showed that many `*`
 * and crafted `[` classes make a single SCAN step exponential, and CVE-2024-31228 (fixed in
 * 6.2.16 / 7.2.6 / 7.4.1) that very long patterns are costly even on fixed servers. Servers older
 * than the fixes are still common, so we accept only what cannot blow up on any of them.
 */
import { InvalidArgumentError } from '../../../locks/errors';

/** Longest glob we accept (the configuration schema allows 200 too). */
export const MAX_GLOB_LENGTH = 200;
/** `*` runs per glob: two keeps the worst case of the backtracking matcher quadratic. */
export const MAX_GLOB_STARS = 2;
/** `[...]` classes per glob, and characters inside one class. */
export const MAX_GLOB_CLASSES = 4;
export const MAX_GLOB_CLASS_LENGTH = 32;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** One parsed piece of a validated glob. */
type Piece =
  | { t: 'lit'; c: string }
  | { t: 'star' }
  | { t: 'any' }
  | { t: 'class'; negate: boolean; items: Array<{ from: string; to: string }> };

function parse(glob: string): Piece[] {
  const bad = (why: string): never => {
    throw new InvalidArgumentError(`unsafe or invalid key glob ${JSON.stringify(glob)}: ${why}`);
  };
  if (typeof glob !== 'string' || glob.length === 0) bad('it is empty');
  if (glob.length > MAX_GLOB_LENGTH) bad(`it is longer than ${MAX_GLOB_LENGTH} characters`);
  if (CONTROL.test(glob)) bad('it contains a control character');
  const pieces: Piece[] = [];
  let stars = 0;
  let classes = 0;
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '\\') {
      if (i + 1 >= glob.length) bad('it ends with a lone backslash');
      pieces.push({ t: 'lit', c: glob[++i]! });
    } else if (ch === '*') {
      if (glob[i + 1] === '*') bad('"**" is not allowed (use a single "*")');
      if (++stars > MAX_GLOB_STARS) bad(`more than ${MAX_GLOB_STARS} "*" (CVE-2022-36021: many "*" make Redis pattern matching exponential)`);
      pieces.push({ t: 'star' });
    } else if (ch === '?') {
      pieces.push({ t: 'any' });
    } else if (ch === '[') {
      if (++classes > MAX_GLOB_CLASSES) bad(`more than ${MAX_GLOB_CLASSES} "[...]" classes`);
      const start = i;
      let j = i + 1;
      let negate = false;
      if (glob[j] === '^') {
        negate = true;
        j++;
      }
      const chars: string[] = [];
      let closed = false;
      for (; j < glob.length; j++) {
        const c = glob[j]!;
        if (c === '\\') {
          if (j + 1 >= glob.length) bad('a "[...]" class ends with a lone backslash');
          chars.push(glob[++j]!);
          continue;
        }
        if (c === ']') {
          closed = true;
          break;
        }
        // Nested "[" is where the 2022/2024 pattern-matching DoS reports start: refuse it outright.
        if (c === '[') bad('"[" inside a "[...]" class (escape it as "\\[")');
        chars.push(c);
      }
      if (!closed) bad('a "[" class is not closed with "]"');
      if (j - start > MAX_GLOB_CLASS_LENGTH) bad(`a "[...]" class is longer than ${MAX_GLOB_CLASS_LENGTH} characters`);
      if (chars.length === 0) bad('an empty "[]" class');
      const items: Array<{ from: string; to: string }> = [];
      for (let k = 0; k < chars.length; k++) {
        if (chars[k + 1] === '-' && k + 2 < chars.length) {
          // Redis swaps reversed ranges ([z-a] = [a-z]); do the same so both sides agree.
          const [a, b] = [chars[k]!, chars[k + 2]!];
          items.push(a <= b ? { from: a, to: b } : { from: b, to: a });
          k += 2;
        } else {
          items.push({ from: chars[k]!, to: chars[k]! });
        }
      }
      pieces.push({ t: 'class', negate, items });
      i = j;
    } else {
      pieces.push({ t: 'lit', c: ch });
    }
  }
  return pieces;
}

/**
 * Returns `glob` unchanged if it is in the safe subset, else throws an InvalidArgumentError that
 * says why.
 * Allowed: literal characters, `\x` escapes, `?`, at most 2 `*` (never `**`), and at most 4
 * closed `[...]` / `[^...]` classes of up to 32 characters without a nested `[`; up to 200
 * characters, no control characters.
 */
export function validateMatchGlob(glob: string): string {
  parse(glob);
  return glob;
}

/** Escapes plain text so that Redis MATCH treats every character literally. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

const reEscape = (c: string) => c.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');

/** A RegExp equivalent to Redis' matching of a validated glob (throws for an unsafe one). */
export function globToRegExp(glob: string): RegExp {
  let src = '^';
  for (const p of parse(glob)) {
    if (p.t === 'lit') src += reEscape(p.c);
    else if (p.t === 'star') src += '[\\s\\S]*';
    else if (p.t === 'any') src += '[\\s\\S]';
    else {
      const body = p.items.map((r) => (r.from === r.to ? reEscape(r.from) : `${reEscape(r.from)}-${reEscape(r.to)}`)).join('');
      src += p.negate ? `[^${body}]` : `[${body}]`;
    }
  }
  // No 'u' flag: Redis compares bytes, and without it `\-` stays a legal escape outside classes.
  return new RegExp(`${src}$`);
}

/** True when `key` matches one of the (validated) globs, as Redis MATCH would decide. */
export function matchesAnyGlob(key: string, globs: readonly string[]): boolean {
  return globs.some((g) => globToRegExp(g).test(key));
}
