/**
 * WQL LIKE (WMI "LIKE Operator"): `%` any run of characters, `_` exactly one, `[abc]` / `[a-z]` one
 * of a set, `[^…]` one not in it; everything else literal; case-insensitive, as WMI compares
 * strings. A `[` without a later `]` is a literal `[`; a `]` right after `[` (or `[^`) belongs to
 * the set.
 *
 * Matching never backtracks further than the last `%` (the classic greedy wildcard matcher), so
 * it costs at most (value length + 1) x (pattern length + 2) steps. A regular expression built
 * from the pattern would backtrack exponentially: `%a%a%a%a%a%a%a%a%b` against 60 characters ran
 * for 41 s. Each call reports the steps it took, so a query can be charged for them.
 */

type LikeToken =
  | { readonly kind: 'any' }
  | { readonly kind: 'one' }
  | { readonly kind: 'char'; readonly folded: number }
  | { readonly kind: 'set'; readonly negated: boolean; readonly chars: string; readonly ranges: readonly (readonly [string, string])[] };

export interface LikeMatch {
  readonly matched: boolean;
  /** Work done: characters folded plus comparisons; at most (value length + 1) x (pattern length + 2). */
  readonly steps: number;
}

/**
 * ECMAScript's case folding for a case-insensitive, non-Unicode regular expression
 * (ECMA-262 "Canonicalize"): upper case unless that takes a non-ASCII character to ASCII or to
 * several characters. LIKE folds as the regular expressions it replaces did.
 */
function fold(c: string): string {
  const u = c.toUpperCase();
  if (u.length !== 1) return c;
  if (c.charCodeAt(0) >= 128 && u.charCodeAt(0) < 128) return c;
  return u;
}

/** fold() of each UTF-16 unit of the value, once per match rather than once per comparison. */
function foldedCodes(value: string): Uint16Array {
  const codes = new Uint16Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    codes[i] = c < 128 ? (c >= 97 && c <= 122 ? c - 32 : c) : fold(value[i]!).charCodeAt(0);
  }
  return codes;
}

export class LikePattern {
  readonly source: string;
  private readonly tokens: readonly LikeToken[];

  constructor(pattern: string) {
    this.source = pattern;
    this.tokens = tokenizeLike(pattern);
  }

  matches(value: string): boolean {
    return this.match(value).matched;
  }

  /** Greedy match with one resume point: the most recent `%` and the value position it took. */
  match(value: string): LikeMatch {
    const t = this.tokens;
    const folded = foldedCodes(value);
    let v = 0;
    let p = 0;
    let star = -1;
    let resume = 0;
    let steps = value.length;
    while (v < value.length) {
      steps++;
      const token = t[p];
      if (token !== undefined && token.kind === 'any') {
        star = p++;
        resume = v;
      } else if (token !== undefined && matchesOne(token, folded[v]!, value, v)) {
        p++;
        v++;
      } else if (star >= 0) {
        // The last % takes one more character; everything after it is tried again from there.
        p = star + 1;
        v = ++resume;
      } else {
        return { matched: false, steps };
      }
    }
    while (p < t.length && t[p]!.kind === 'any') p++;
    return { matched: p === t.length, steps: steps + 1 };
  }
}

function matchesOne(token: LikeToken, folded: number, value: string, at: number): boolean {
  switch (token.kind) {
    case 'one':
      return true;
    case 'char':
      return token.folded === folded;
    case 'set':
      return inSet(token, value[at]!) !== token.negated;
    case 'any':
      return false;
  }
}

/** A set matches c when c, its upper or its lower case is a member that folds as c does. */
function inSet(set: Extract<LikeToken, { kind: 'set' }>, c: string): boolean {
  const folded = fold(c);
  for (const candidate of new Set([c, c.toLowerCase(), c.toUpperCase()])) {
    if (candidate.length !== 1 || fold(candidate) !== folded) continue;
    if (set.chars.includes(candidate)) return true;
    for (const [lo, hi] of set.ranges) if (lo <= candidate && candidate <= hi) return true;
  }
  return false;
}

function tokenizeLike(pattern: string): LikeToken[] {
  const tokens: LikeToken[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '%') {
      // Runs of % are one %: it keeps the resume logic to one point per run.
      if (tokens[tokens.length - 1]?.kind !== 'any') tokens.push({ kind: 'any' });
    } else if (c === '_') {
      tokens.push({ kind: 'one' });
    } else if (c === '[' && pattern.indexOf(']', i + 2) >= 0) {
      const end = pattern.indexOf(']', i + 2);
      let body = pattern.slice(i + 1, end);
      const negated = body.startsWith('^');
      if (negated) body = body.slice(1);
      tokens.push(parseSet(body, negated));
      i = end;
    } else {
      tokens.push({ kind: 'char', folded: fold(c).charCodeAt(0) });
    }
  }
  return tokens;
}

/** `a-z` is a range unless `-` comes first or last; a descending range is empty. */
function parseSet(body: string, negated: boolean): LikeToken {
  let chars = '';
  const ranges: [string, string][] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (body[i + 1] === '-' && i + 2 < body.length) {
      const hi = body[i + 2]!;
      if (c <= hi) ranges.push([c, hi]);
      i += 2;
    } else {
      chars += c;
    }
  }
  return { kind: 'set', negated, chars, ranges };
}
