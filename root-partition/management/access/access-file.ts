/**
 * The host's access list, `access.json` in the data directory (mode 0600, owned by the service's
 * user): which local users and which HTTP Basic users may manage VMs, and with which role.
 *
 *   {
 *     "local": [ { "user": "alice", "role": "full" }, { "uid": 1001, "role": "read-only" },
 *                { "group": "hyperv-admins", "role": "full" } ],
 *     "basic": [ { "user": "operator", "role": "full", "password": "scrypt$16384$8$1$…$…" } ]
 *   }
 *
 * The service's own user and root are always `full` and need no entry. The file holds password
 * hashes and decides who may do what, so one that others may read or write, or that another
 * user owns, is refused as a whole, with the reason; so is any unknown field or bad value.
 */
import { closeSync, fsyncSync, lstatSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parsePasswordHash } from './password-hash.ts';
import { isRole, type Role } from './roles.ts';

export const ACCESS_FILE = 'access.json';

export type LocalGrant = ({ user: string } | { uid: number } | { group: string }) & { role: Role };
export interface BasicUser {
  user: string;
  role: Role;
  password: string;
}
export interface AccessList {
  local: LocalGrant[];
  basic: BasicUser[];
}

export class AccessFileError extends Error {
  readonly code = 'TSVISOR_ERR_ACCESS_FILE';
}

const NAME = /^[A-Za-z0-9._][A-Za-z0-9._@-]{0,63}$/;

function problems(value: unknown): string[] {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return ['must be a JSON object with "local" and "basic" lists'];
  const o = value as Record<string, unknown>;
  const out: string[] = [];
  for (const k of Object.keys(o)) if (k !== 'local' && k !== 'basic') out.push(`${k}: unknown field`);
  const list = (k: 'local' | 'basic') => (o[k] === undefined ? [] : Array.isArray(o[k]) ? (o[k] as unknown[]) : (out.push(`${k}: must be a list`), []));
  list('local').forEach((e, i) => {
    const w = `local[${i}]`;
    if (!e || typeof e !== 'object') return void out.push(`${w}: must be an object`);
    const g = e as Record<string, unknown>;
    const keys = ['user', 'uid', 'group'].filter((k) => k in g);
    if (keys.length !== 1) out.push(`${w}: needs exactly one of user, uid, group`);
    for (const k of Object.keys(g)) if (!['user', 'uid', 'group', 'role'].includes(k)) out.push(`${w}.${k}: unknown field`);
    if ('uid' in g && !(Number.isInteger(g.uid) && (g.uid as number) >= 0 && (g.uid as number) < 2 ** 32))
      out.push(`${w}.uid: must be a uid (a non-negative integer)`);
    for (const k of ['user', 'group'])
      if (k in g && !(typeof g[k] === 'string' && NAME.test(g[k] as string))) out.push(`${w}.${k}: must be a user or group name`);
    if (!isRole(g.role)) out.push(`${w}.role: must be "read-only" or "full"`);
  });
  const seen = new Set<string>();
  list('basic').forEach((e, i) => {
    const w = `basic[${i}]`;
    if (!e || typeof e !== 'object') return void out.push(`${w}: must be an object`);
    const b = e as Record<string, unknown>;
    for (const k of Object.keys(b)) if (!['user', 'role', 'password'].includes(k)) out.push(`${w}.${k}: unknown field`);
    if (!(typeof b.user === 'string' && NAME.test(b.user))) out.push(`${w}.user: must be a user name (letters, digits, . _ @ -)`);
    else if (seen.has(b.user)) out.push(`${w}.user: ${b.user} is listed twice`);
    else seen.add(b.user);
    if (!isRole(b.role)) out.push(`${w}.role: must be "read-only" or "full"`);
    const hash = typeof b.password === 'string' ? parsePasswordHash(b.password) : 'must be a string';
    if (typeof hash === 'string') out.push(`${w}.password: ${hash}`);
  });
  return out;
}

export function validateAccessList(value: unknown, where: string): AccessList {
  const p = problems(value);
  if (p.length) throw new AccessFileError(`${where}: ${p.join('; ')}`);
  const o = value as Partial<AccessList>;
  return { local: o.local ?? [], basic: o.basic ?? [] };
}

/**
 * The file's access list, or an empty one when there is no file. Refuses a file that is not a
 * regular file (a symlink included), not owned by `owner` (or root), or open to group or others.
 */
export function readAccessFile(path: string, owner = process.geteuid?.() ?? 0): AccessList {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { local: [], basic: [] };
    throw new AccessFileError(`${path}: ${(e as Error).message}`);
  }
  if (!st.isFile()) throw new AccessFileError(`${path} must be a regular file (not a symlink or anything else)`);
  if (st.uid !== owner && st.uid !== 0) throw new AccessFileError(`${path} belongs to uid ${st.uid}; it must belong to the service's user (uid ${owner})`);
  if (st.mode & 0o077)
    throw new AccessFileError(`${path} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}: others may read or change it; run chmod 600 ${path}`);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new AccessFileError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  return validateAccessList(value, path);
}

/** Replaces the file atomically and durably; the new file is 0600 from its first byte. */
export function writeAccessFile(path: string, list: AccessList): void {
  validateAccessList(list, path);
  const temp = join(dirname(path), `.tmp-${basename(path)}.${process.pid}.${Date.now()}`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    const bytes = Buffer.from(`${JSON.stringify(list, null, 2)}\n`);
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(temp, path);
  // The rename is durable only once the directory is: else a crash can bring back the old list.
  const dirFd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
