/**
 * `tsvisor user …`: the host's access list (access.json in the data directory, management/access):
 * HTTP Basic users with their scrypt-hashed password and role, and the roles of local users, uids
 * and groups. The password is read from stdin (a pipe or the terminal), never from the command
 * line, where other users could see it in the process list. Run it as the service's user: the
 * service refuses an access list someone else owns. A running service picks changes up at once.
 */
import type { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ACCESS_FILE, readAccessFile, writeAccessFile, type AccessList, type LocalGrant } from '../management/access/access-file.ts';
import { hashPassword } from '../management/access/password-hash.ts';
import { isRole, type Role } from '../management/access/roles.ts';
import { defaultDataDir } from '../host/data-dir.ts';
import { printTable } from './table.ts';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('password (ends at Enter): ');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) {
    chunks.push(c as Buffer);
    if (process.stdin.isTTY && (c as Buffer).includes(10)) break;
  }
  // One trailing newline is the end of the line, not part of the password.
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

function role(text: string): Role {
  if (!isRole(text)) throw new Error(`--role must be "read-only" or "full", not "${text}"`);
  return text;
}

function edit(dataDir: string, change: (list: AccessList) => void): string {
  const root = resolve(dataDir);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const file = join(root, ACCESS_FILE);
  const list = readAccessFile(file);
  change(list);
  writeAccessFile(file, list);
  return file;
}

function localKey(o: { uid?: string; localUser?: string; group?: string }): Omit<LocalGrant, 'role'> {
  const given = [o.uid, o.localUser, o.group].filter((v) => v !== undefined).length;
  if (given !== 1) throw new Error('name exactly one of --uid, --local-user, --group');
  if (o.uid !== undefined) {
    const uid = Number(o.uid);
    if (!Number.isInteger(uid) || uid < 0) throw new Error(`--uid must be a number, not "${o.uid}"`);
    return { uid };
  }
  return o.localUser !== undefined ? { user: o.localUser } : { group: o.group! };
}

const sameLocal = (a: object, b: object) => JSON.stringify({ ...a, role: undefined }) === JSON.stringify({ ...b, role: undefined });

export function registerUserCommands(program: Command): void {
  const user = program
    .command('user')
    .description('who may manage this host: HTTP Basic users and local users with their role (read-only or full)')
    .option('--data-dir <dir>', "the service's data directory", defaultDataDir());
  const dir = () => (user.opts() as { dataDir: string }).dataDir;

  user
    .command('add <name>')
    .description('add an HTTP Basic user, or set its password and role; the password is read from stdin')
    .requiredOption('--role <role>', 'read-only or full')
    .action(async (name: string, o: { role: string }) => {
      const r = role(o.role);
      const password = await readStdin();
      if (password.length === 0) throw new Error('an empty password is not allowed');
      const hash = await hashPassword(password);
      const file = edit(dir(), (list) => {
        list.basic = [...list.basic.filter((b) => b.user !== name), { user: name, role: r, password: hash }];
      });
      console.log(`${name}: ${r} (password stored as an scrypt hash in ${file})`);
    });

  user
    .command('remove <name>')
    .description('remove an HTTP Basic user')
    .action((name: string) => {
      let found = false;
      edit(dir(), (list) => {
        found = list.basic.some((b) => b.user === name);
        list.basic = list.basic.filter((b) => b.user !== name);
      });
      if (!found) throw new Error(`no HTTP Basic user ${name}`);
      console.log(`${name}: removed`);
    });

  user
    .command('allow-local')
    .description('give a local user, uid or group a role (for requests without credentials from this host)')
    .option('--uid <uid>', 'a numeric uid')
    .option('--local-user <name>', 'a user name from /etc/passwd')
    .option('--group <name>', 'a group name from /etc/group')
    .requiredOption('--role <role>', 'read-only or full')
    .action((o: { uid?: string; localUser?: string; group?: string; role: string }) => {
      const key = localKey(o);
      const grant = { ...key, role: role(o.role) } as LocalGrant;
      edit(dir(), (list) => {
        list.local = [...list.local.filter((g) => !sameLocal(g, key)), grant];
      });
      console.log(`${JSON.stringify(key)}: ${grant.role}`);
    });

  user
    .command('deny-local')
    .description("take a local user's, uid's or group's role away")
    .option('--uid <uid>', 'a numeric uid')
    .option('--local-user <name>', 'a user name')
    .option('--group <name>', 'a group name')
    .action((o: { uid?: string; localUser?: string; group?: string }) => {
      const key = localKey(o);
      edit(dir(), (list) => {
        list.local = list.local.filter((g) => !sameLocal(g, key));
      });
      console.log(`${JSON.stringify(key)}: no role`);
    });

  user
    .command('list')
    .description('the access list (never the password hashes)')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) => {
      const list = readAccessFile(join(resolve(dir()), ACCESS_FILE));
      if (o.json) return console.log(JSON.stringify({ local: list.local, basic: list.basic.map((b) => ({ user: b.user, role: b.role })) }, null, 2));
      printTable(
        ['KIND', 'WHO', 'ROLE'],
        [
          ['local', "root and the service's own user (always)", 'full'],
          ...list.local.map((g) => ['local', 'uid' in g ? `uid ${g.uid}` : 'user' in g ? `user ${g.user}` : `group ${g.group}`, g.role]),
          ...list.basic.map((b) => ['basic', b.user, b.role]),
        ],
      );
    });
}
