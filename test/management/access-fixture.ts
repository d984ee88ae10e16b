/**
 * A real access list for tests: access.json written in a temporary directory with scrypt hashes,
 * and the Authenticator over it. `trustedUids: []` makes even root's own connections prove
 * themselves, so that the credential paths are exercised by a test running as root.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACCESS_FILE, writeAccessFile, type AccessList, type LocalGrant } from '../../root-partition/management/access/access-file.ts';
import { Authenticator, type AuthenticatorOptions } from '../../root-partition/management/access/authenticator.ts';
import { hashPassword } from '../../root-partition/management/access/password-hash.ts';
import type { Role } from '../../root-partition/management/access/roles.ts';

export interface TestUser {
  user: string;
  password: string;
  role: Role;
}

export async function accessList(users: readonly TestUser[], local: LocalGrant[] = []): Promise<AccessList> {
  return { local, basic: await Promise.all(users.map(async (u) => ({ user: u.user, role: u.role, password: await hashPassword(u.password) }))) };
}

export async function writeTestAccess(dir: string, users: readonly TestUser[], local: LocalGrant[] = []): Promise<string> {
  const file = join(dir, ACCESS_FILE);
  writeAccessFile(file, await accessList(users, local));
  return file;
}

export async function testAuthenticator(
  users: readonly TestUser[],
  o: Partial<AuthenticatorOptions> = {},
): Promise<{ authenticator: Authenticator; dispose: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'tsv-acc-'));
  const accessFile = await writeTestAccess(dir, users);
  return { authenticator: new Authenticator({ accessFile, trustedUids: [], ...o }), dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
