/**
 * The console's calls to its server: JSON over fetch with the session cookie, and the session's
 * CSRF token in a header on every change (the server refuses a change without it).
 */
export interface Session {
  user: string;
  role: 'read-only' | 'full';
  csrf: string;
}

export class ApiRefused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

let session: Session | null = null;

export function currentSession(): Session | null {
  return session;
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && session) headers['X-CSRF-Token'] = session.csrf;
  const r = await fetch(path, { method, headers, credentials: 'same-origin', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await r.text();
  let value: unknown = null;
  try {
    value = text ? JSON.parse(text) : null;
  } catch {
    value = { error: text };
  }
  if (!r.ok) {
    if (r.status === 401 && path !== '/api/login') session = null;
    throw new ApiRefused(r.status, (value as { error?: string } | null)?.error ?? `${r.status} ${r.statusText}`);
  }
  return value as T;
}

export async function resumeSession(): Promise<Session | null> {
  try {
    session = await call<Session>('GET', '/api/session');
  } catch {
    session = null;
  }
  return session;
}

export async function login(user: string, password: string): Promise<Session> {
  session = await call<Session>('POST', '/api/login', { user, password });
  return session;
}

export async function logout(): Promise<void> {
  try {
    await call('POST', '/api/logout', {});
  } finally {
    session = null;
  }
}

export const api = {
  get: <T>(path: string) => call<T>('GET', path),
  post: <T>(path: string, body: unknown) => call<T>('POST', path, body),
};
