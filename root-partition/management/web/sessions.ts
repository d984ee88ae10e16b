/**
 * Browser sessions of the web console: a random id in a cookie (HttpOnly, SameSite=Strict, Secure
 * over HTTPS) and a CSRF token the page sends back in a header with every action (OWASP's
 * "synchronizer token" pattern). A session ends after `idleMs` unused, after `maxAgeMs` in all,
 * at logout, or when access.json no longer gives its user the role it was opened with. The
 * table is bounded: past `maxSessions` the least recently used session is dropped.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Role } from '../access/roles.ts';

export interface WebSession {
  readonly id: string;
  readonly csrf: string;
  readonly user: string;
  readonly role: Role;
  readonly created: number;
  lastUsed: number;
}

export interface SessionLimits {
  idleMs: number;
  maxAgeMs: number;
  maxSessions: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = { idleMs: 30 * 60_000, maxAgeMs: 12 * 3600_000, maxSessions: 256 };

export const SESSION_COOKIE = 'tsvisor_session';

export class SessionTable {
  private readonly sessions = new Map<string, WebSession>();

  constructor(
    private readonly limits: SessionLimits = DEFAULT_SESSION_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  open(user: string, role: Role): WebSession {
    while (this.sessions.size >= this.limits.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    const t = this.now();
    const s: WebSession = { id: randomBytes(32).toString('base64url'), csrf: randomBytes(32).toString('base64url'), user, role, created: t, lastUsed: t };
    this.sessions.set(s.id, s);
    return s;
  }

  /** The live session of this cookie header, touched; null when there is none. */
  fromCookie(cookieHeader: string | undefined): WebSession | null {
    const id = cookieValue(cookieHeader, SESSION_COOKIE);
    if (!id) return null;
    const s = this.sessions.get(id);
    if (!s) return null;
    const t = this.now();
    if (t - s.lastUsed > this.limits.idleMs || t - s.created > this.limits.maxAgeMs) {
      this.sessions.delete(id);
      return null;
    }
    s.lastUsed = t;
    // Re-inserted: the map's order is the use order, so the oldest-used is dropped first.
    this.sessions.delete(id);
    this.sessions.set(id, s);
    return s;
  }

  /**
   * Whether the session is open and within its age, for a stream's check: an open page counts
   * as use (no idle end), but not past the session's age.
   */
  has(id: string): boolean {
    const s = this.sessions.get(id);
    return s !== undefined && this.now() - s.created <= this.limits.maxAgeMs;
  }

  close(id: string): void {
    this.sessions.delete(id);
  }

  /** Ends every session whose user no longer has the role it logged in with. */
  revalidate(roleOf: (user: string) => Role | null): void {
    for (const [id, s] of this.sessions) if (roleOf(s.user) !== s.role) this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }
}

/** Whether the header's token is the session's, in constant time. */
export function csrfMatches(session: WebSession, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string') return false;
  const a = Buffer.from(header);
  const b = Buffer.from(session.csrf);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function cookieValue(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

export function sessionCookie(s: WebSession | null, secure: boolean): string {
  const attrs = `Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
  return s ? `${SESSION_COOKIE}=${s.id}; ${attrs}` : `${SESSION_COOKIE}=; ${attrs}; Max-Age=0`;
}
