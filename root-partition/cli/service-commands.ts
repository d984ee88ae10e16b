/**
 * `tsvisor service unit|install|uninstall`: run VMMS as a systemd service under a dedicated user.
 * Install makes the user (a system account without a login shell), the data directory (its own,
 * 0700) and the unit; it starts the service when systemd runs this machine, and says how to start
 * it by hand when it does not (containers).
 */
import type { Command } from 'commander';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { systemdUnit } from './systemd-unit.ts';
import { CommandFailure } from './management-session.ts';
import { packageRoot } from '../host/package-root.ts';

const DEFAULT_USER = 'tsvisor';
const DEFAULT_DATA_DIR = '/var/lib/tsvisor';
const DEFAULT_UNIT_DIR = '/etc/systemd/system';
const UNIT_NAME = 'tsvisor.service';

/** The directory of the tsvisor package this command runs from (the one whose package.json names it). */
function packageRootOrFail(): string {
  const root = packageRoot();
  if (root === null) throw new CommandFailure('SERVICE', 1, 'cannot find the tsvisor package this command runs from');
  return root;
}

interface ServiceOpts {
  user: string;
  dataDir: string;
  storageRoot: string[];
  unitDir: string;
  start: boolean;
}

function unitText(o: ServiceOpts): string {
  try {
    return systemdUnit({
      user: o.user,
      dataDir: resolve(o.dataDir),
      node: process.execPath,
      bin: join(packageRootOrFail(), 'bin', 'tsvisor.mjs'),
      storageRoots: o.storageRoot,
    });
  } catch (e) {
    if (e instanceof CommandFailure) throw e;
    throw new CommandFailure('SERVICE', 4, (e as Error).message);
  }
}

function idsOf(user: string): { uid: number; gid: number } | null {
  try {
    const [uid, gid] = execFileSync('id', ['-u', user], { encoding: 'utf8' })
      .trim()
      .split(/\s+/)
      .concat(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
    return { uid: Number(uid), gid: Number(gid) };
  } catch {
    return null;
  }
}

const systemdRuns = () => existsSync('/run/systemd/system');

function systemctl(...args: string[]): void {
  execFileSync('systemctl', args, { stdio: ['ignore', 'inherit', 'inherit'] });
}

function install(o: ServiceOpts): void {
  if (process.geteuid?.() !== 0)
    throw new CommandFailure('SERVICE', 1, 'installing the service needs root (it makes a system user and writes the unit): run it with sudo');
  const text = unitText(o);
  const dataDir = resolve(o.dataDir);
  let ids = idsOf(o.user);
  if (!ids) {
    execFileSync(
      'useradd',
      ['--system', '--user-group', '--home-dir', dataDir, '--no-create-home', '--shell', '/usr/sbin/nologin', '--comment', 'tsvisor VMMS', o.user],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    ids = idsOf(o.user)!;
    console.log(`made the system user ${o.user} (uid ${ids.uid})`);
  }
  if (existsSync(dataDir)) {
    const st = lstatSync(dataDir);
    if (!st.isDirectory()) throw new CommandFailure('SERVICE', 4, `${dataDir} exists and is not a directory`);
    // Someone else's directory is not taken over: it may hold another service's files.
    if (st.uid !== ids.uid && st.uid !== 0)
      throw new CommandFailure('SERVICE', 4, `${dataDir} belongs to uid ${st.uid}, not ${o.user}: choose another --data-dir or change its owner yourself`);
    if (st.uid === 0 && readdirCount(dataDir) > 0)
      throw new CommandFailure('SERVICE', 4, `${dataDir} belongs to root and is not empty: choose another --data-dir or give it to ${o.user} yourself`);
  } else {
    // Parents as usual (0755): only the data directory itself is closed, or the user could not reach it.
    mkdirSync(dirname(dataDir), { recursive: true });
    mkdirSync(dataDir, { mode: 0o700 });
  }
  chownSync(dataDir, ids.uid, ids.gid);
  execFileSync('chmod', ['0700', dataDir]);
  mkdirSync(o.unitDir, { recursive: true });
  const unitFile = join(o.unitDir, UNIT_NAME);
  writeFileSync(`${unitFile}.tmp`, text, { mode: 0o644 });
  renameSync(`${unitFile}.tmp`, unitFile);
  console.log(`wrote ${unitFile}: ${o.user} runs \`tsvisor serve --data-dir ${dataDir}\``);
  if (!systemdRuns()) {
    console.log(
      `systemd does not run this machine, so nothing was started; start the service with:\n  runuser -u ${o.user} -- ${process.execPath} ${join(packageRootOrFail(), 'bin', 'tsvisor.mjs')} serve --data-dir ${dataDir}`,
    );
    return;
  }
  systemctl('daemon-reload');
  if (o.start) {
    systemctl('enable', '--now', UNIT_NAME);
    console.log(`${UNIT_NAME} enabled and started; manage VMs as ${o.user} or root: tsvisor vm --data-dir ${dataDir} list`);
  } else console.log(`start it with: systemctl enable --now ${UNIT_NAME}`);
}

function readdirCount(dir: string): number {
  return execFileSync('ls', ['-A', dir], { encoding: 'utf8' }).split('\n').filter(Boolean).length;
}

function uninstall(o: ServiceOpts): void {
  if (process.geteuid?.() !== 0) throw new CommandFailure('SERVICE', 1, 'removing the service needs root: run it with sudo');
  const unitFile = join(o.unitDir, UNIT_NAME);
  if (!existsSync(unitFile)) throw new CommandFailure('SERVICE', 6, `there is no ${unitFile}`);
  if (systemdRuns()) systemctl('disable', '--now', UNIT_NAME);
  rmSync(unitFile);
  if (systemdRuns()) systemctl('daemon-reload');
  console.log(`removed ${unitFile}; the user ${o.user} and the data directory are kept (VMs, disks and logs live there)`);
}

export function registerServiceCommands(program: Command): void {
  const service = program.command('service').description('run VMMS as a systemd service under its own user');
  const common = (c: Command) =>
    c
      .option('--user <name>', 'the system user the service runs as', DEFAULT_USER)
      .option('--data-dir <dir>', "the service's data directory", DEFAULT_DATA_DIR)
      .option(
        '--storage-root <dir>',
        'a directory VM disks and images may come from, besides <data-dir>/disks (repeatable)',
        (d: string, prev: string[]) => [...prev, resolve(d)],
        [] as string[],
      )
      .option('--unit-dir <dir>', 'where the unit file goes', DEFAULT_UNIT_DIR);
  common(service.command('unit').description('print the systemd unit')).action((o: ServiceOpts) => {
    process.stdout.write(unitText(o));
  });
  common(service.command('install').description('make the user and data directory, write the unit, and start it where systemd runs (root)'))
    .option('--no-start', 'write the unit but neither enable nor start it')
    .action((o: ServiceOpts) => install(o));
  common(service.command('uninstall').description('stop and disable the service and remove its unit; the user and data are kept (root)')).action(
    (o: ServiceOpts) => uninstall(o),
  );
}
