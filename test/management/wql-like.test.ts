import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LikePattern } from '../../root-partition/management/wql/like-pattern.ts';

/**
 * The reference: LIKE translated to a regular expression, as the service did before. Exact, but
 * it backtracks exponentially, so it only runs on the short strings generated here.
 */
function referenceLike(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '%') re += '[\\s\\S]*';
    else if (c === '_') re += '[\\s\\S]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith('^');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = end;
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'i');
}

/** A regular expression for the pattern, or null where the reference has none (a descending range). */
function reference(pattern: string): RegExp | null {
  try {
    return referenceLike(pattern);
  } catch {
    return null;
  }
}

// Small alphabets, so that patterns and values meet often; both cases and every special character.
const valueChar = fc.constantFrom('a', 'b', 'A', 'B', 'z', '-', '^', ']', '[', '%', '_', '.', ' ', '\n', 'é', 'É');
const patternChar = fc.constantFrom('a', 'b', 'A', 'B', 'z', '-', '^', ']', '[', '%', '%', '_', '.', 'é');
const value = fc.array(valueChar, { maxLength: 12 }).map((a) => a.join(''));
const pattern = fc.array(patternChar, { maxLength: 10 }).map((a) => a.join(''));

describe('WQL LIKE matcher', () => {
  it('agrees with the regular-expression reference on random patterns and values', () => {
    fc.assert(
      fc.property(pattern, value, (p, v) => {
        const re = reference(p);
        fc.pre(re !== null);
        return new LikePattern(p).matches(v) === re!.test(v);
      }),
      { numRuns: 5_000 },
    );
  });

  it('agrees on values built to match: pieces of the value put into the pattern', () => {
    fc.assert(
      fc.property(value, fc.array(fc.tuple(fc.nat(12), fc.constantFrom('%', '_', '[ab]', '[^a]', '[a-z]')), { maxLength: 4 }), (v, edits) => {
        let p = v.replace(/[%_[\]]/g, 'x');
        for (const [at, what] of edits) p = p.slice(0, at) + what + p.slice(at + 1);
        const re = reference(p);
        fc.pre(re !== null);
        return new LikePattern(p).matches(v) === re!.test(v);
      }),
      { numRuns: 2_000 },
    );
  });

  it('never takes more than (value length + 1) x (pattern length + 2) steps', () => {
    fc.assert(
      fc.property(pattern, value, (p, v) => {
        return new LikePattern(p).match(v).steps <= (v.length + 1) * (p.length + 2);
      }),
      { numRuns: 2_000 },
    );
  });

  it('answers the pathological pattern that froze the service, in linear steps', () => {
    const p = new LikePattern('%a%a%a%a%a%a%a%a%b');
    const v = 'a'.repeat(60);
    const started = performance.now();
    const r = p.match(v);
    expect(r.matched).toBe(false);
    expect(r.steps).toBeLessThanOrEqual(61 * 19);
    expect(p.matches(`${v}b`)).toBe(true);
    // The same shape, far longer: still quadratic at worst, never exponential.
    const long = new LikePattern(`${'%a'.repeat(200)}%b`);
    expect(long.match('a'.repeat(5000)).matched).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('reads sets, ranges, complements and unterminated brackets as WMI does', () => {
    const m = (p: string, v: string) => new LikePattern(p).matches(v);
    expect([m('[a-c]x', 'Bx'), m('[a-c]x', 'dx'), m('[^a-c]x', 'dx'), m('[^a-c]x', 'Ax')]).toEqual([true, false, true, false]);
    expect([m('[]a]', ']'), m('[a-]', '-'), m('[-a]', '-'), m('[a^]', '^')]).toEqual([true, true, true, true]);
    expect([m('[ab', '[ab'), m('a[', 'a['), m('%[%', 'x[y')]).toEqual([true, true, true]);
    expect([m('[z-a]', 'm'), m('[^z-a]', 'm')]).toEqual([false, true]);
    expect([m('', ''), m('', 'a'), m('%', ''), m('_', ''), m('%%%', 'abc')]).toEqual([true, false, true, false, true]);
    expect([m('WEB _ DB', 'web & db'), m('é%', 'É!')]).toEqual([true, true]);
  });
});
