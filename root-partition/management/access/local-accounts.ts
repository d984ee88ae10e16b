/**
 * Local accounts as /etc/passwd and /etc/group (passwd(5), group(5)) state them: a uid's user
 * name and the groups it is in (its primary group and every group listing it as a member).
 * Accounts only a directory service knows (NSS: LDAP, sssd) are not seen; name them by uid.
 */
import { readFileSync } from 'node:fs';

export interface LocalAccount {
  readonly uid: number;
  readonly name: string | null;
  readonly groups: readonly string[];
}

function rows(file: string): string[][] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

export function localAccount(uid: number, files = { passwd: '/etc/passwd', group: '/etc/group' }): LocalAccount {
  const user = rows(files.passwd).find((f) => Number(f[2]) === uid && f[2] !== '');
  const name = user?.[0] ?? null;
  const primaryGid = user ? Number(user[3]) : NaN;
  const groups = rows(files.group)
    .filter((f) => Number(f[2]) === primaryGid || (name !== null && (f[3] ?? '').split(',').includes(name)))
    .map((f) => f[0]!);
  return { uid, name, groups };
}
