/**
 * Browser sessions: random ids and tokens, ended by idle time, by age, by logout and by a role
 * change; the table bounded with the least recently used session dropped first; the CSRF token
 * compared whole.
 */
import { describe, expect, it } from 'vitest';
import { cookieValue, csrfMatches, sessionCookie, SessionTable, SESSION_COOKIE } from '../../root-partition/management/web/sessions.ts';

const cookie = (id: string) => `other=1; ${SESSION_COOKIE}=${id}; x=y`;

describe('SessionTable', () => {
  it('ends a session after its idle time and after its age, whatever its use', () => {
    let now = 0;
    const t = new SessionTable({ idleMs: 100, maxAgeMs: 1000, maxSessions: 10 }, () => now);
    const s = t.open('admin', 'full');
    expect(s.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(s.csrf).not.toBe(s.id);
    for (now = 90; now < 1000; now += 90) expect(t.fromCookie(cookie(s.id))?.user).toBe('admin');
    now = 1001;
    expect(t.fromCookie(cookie(s.id))).toBeNull();
    const idle = t.open('viewer', 'read-only');
    now += 101;
    expect(t.fromCookie(cookie(idle.id))).toBeNull();
    expect(t.size).toBe(0);
  });

  it('keeps at most maxSessions, dropping the least recently used', () => {
    let now = 0;
    const t = new SessionTable({ idleMs: 1e9, maxAgeMs: 1e9, maxSessions: 3 }, () => now);
    const [a, b, c] = [t.open('a', 'full'), t.open('b', 'full'), t.open('c', 'full')];
    now = 1;
    t.fromCookie(cookie(a.id)); // a is now the most recently used
    t.open('d', 'full');
    expect(t.size).toBe(3);
    expect(t.fromCookie(cookie(b.id))).toBeNull();
    expect(t.fromCookie(cookie(a.id))?.user).toBe('a');
    expect(t.fromCookie(cookie(c.id))?.user).toBe('c');
  });

  it('closes sessions whose user lost its role, and on logout', () => {
    const t = new SessionTable();
    const a = t.open('a', 'full');
    const b = t.open('b', 'read-only');
    t.revalidate((u) => (u === 'a' ? 'read-only' : 'read-only'));
    expect(t.fromCookie(cookie(a.id))).toBeNull();
    expect(t.fromCookie(cookie(b.id))?.user).toBe('b');
    t.close(b.id);
    expect(t.fromCookie(cookie(b.id))).toBeNull();
    expect(t.fromCookie(undefined)).toBeNull();
    expect(t.fromCookie(`${SESSION_COOKIE}=`)).toBeNull();
  });

  it('compares the CSRF token whole and writes the cookie attributes', () => {
    const s = new SessionTable().open('a', 'full');
    expect(csrfMatches(s, s.csrf)).toBe(true);
    expect(csrfMatches(s, s.csrf.slice(0, -1))).toBe(false);
    expect(csrfMatches(s, `${s.csrf}x`)).toBe(false);
    expect(csrfMatches(s, [s.csrf])).toBe(false);
    expect(csrfMatches(s, undefined)).toBe(false);
    expect(sessionCookie(s, true)).toBe(`${SESSION_COOKIE}=${s.id}; Path=/; HttpOnly; SameSite=Strict; Secure`);
    expect(sessionCookie(null, false)).toBe(`${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`);
    expect(cookieValue('a=1; b = 2 ;c=3', 'b')).toBe('2');
  });
});
