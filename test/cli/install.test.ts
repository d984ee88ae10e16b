/**
 * Install anywhere: the package as `npm pack` makes it (host bundles and guest images prebuilt,
 * marked as built from the sources beside them), installed with `npm install -g` into a temporary
 * prefix, then `tsvisor run hello` as an unprivileged user made for the test, from `/`: it boots
 * at once from the shipped bundles and images and writes nothing into the (root-owned) install.
 *
 * The install also carries the man page (linked where man(1) looks) and `tsvisor service install`
 * makes the service's own user and data directory: the unit's command, run as that user, serves.
 *
 * Needs root (useradd, runuser) and installs the package's dependencies from npm's cache or the
 * registry: it runs in CI (`.ci/run` sets CI=true) or with TSVISOR_INSTALL_TEST=1.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it, vi } from 'vitest';
import { buildGuests } from '../../scripts/build-guests.ts';
import { buildHost } from '../../scripts/build-host.ts';
import { buildMan } from '../../scripts/build-man.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const root = typeof process.getuid === 'function' && process.getuid() === 0;
const wanted = process.env.CI === 'true' || process.env.TSVISOR_INSTALL_TEST === '1';
const skip = !root ? 'not root: useradd and runuser are needed' : !wanted ? 'set CI=true or TSVISOR_INSTALL_TEST=1 (installs the dependencies)' : '';
if (skip) console.warn(`install test skipped: ${skip}`);

const dir = mkdtempSync(join(tmpdir(), 'tsv-inst-'));
const user = `tsvinst${process.pid % 100000}`;
const serviceUser = `tsvsvc${process.pid % 100000}`;
let userMade = false;
let serviceUserMade = false;
let service: ReturnType<typeof spawn> | undefined;

/** Every file under `d` with its modification time, to prove the run wrote nothing there. */
function snapshot(d: string, out = new Map<string, number>()): Map<string, number> {
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    if (e.isDirectory()) snapshot(p, out);
    else out.set(p, statSync(p).mtimeMs);
  }
  return out;
}

afterAll(() => {
  if (service && service.exitCode === null) service.kill('SIGKILL');
  if (userMade) spawnSync('userdel', [user]);
  if (serviceUserMade) spawnSync('userdel', [serviceUser]);
  rmSync(dir, { recursive: true, force: true });
});

it.skipIf(Boolean(skip))(
  'npm install -g of the packed tarball, then tsvisor run hello as an unprivileged user',
  async () => {
    await buildHost();
    await buildGuests();
    buildMan();
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'pack-marker.mjs')]);
    try {
      execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, stdio: 'ignore' });
    } finally {
      execFileSync(process.execPath, [join(ROOT, 'scripts', 'pack-marker.mjs'), 'remove']);
    }
    expect(existsSync(join(ROOT, 'build', 'host', 'packed.json'))).toBe(false);
    const prefix = join(dir, 'prefix');
    execFileSync('npm', ['install', '-g', join(dir, 'tsvisor-0.1.0.tgz'), '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund'], {
      stdio: 'ignore',
      timeout: 240_000,
    });
    const installed = join(prefix, 'lib', 'node_modules', 'tsvisor');
    expect(existsSync(join(installed, 'build', 'host', 'packed.json'))).toBe(true);

    const home = join(dir, 'home');
    mkdirSync(home);
    chmodSync(dir, 0o755);
    execFileSync('useradd', ['-M', '-d', home, '-s', '/usr/sbin/nologin', user]);
    userMade = true;
    execFileSync('chown', [user, home]);
    const before = snapshot(installed);
    const started = Date.now();
    const r = spawnSync('runuser', ['-u', user, '--', 'env', `HOME=${home}`, `PATH=${join(prefix, 'bin')}:/usr/bin:/bin`, 'tsvisor', 'run', 'hello'], {
      cwd: '/',
      encoding: 'utf8',
      timeout: 120_000,
      input: '',
    });
    const seconds = (Date.now() - started) / 1000;
    expect({ status: r.status, stderr: r.stderr.replace(/\[tsvisor\] VP 0: halted.*\n/, '') }).toEqual({ status: 0, stderr: '' });
    expect(r.stdout).toContain('tsvisor sample guest: 65536 KiB RAM, 1 VP');
    expect(r.stdout).toContain('5 timer interrupts at 10 ms');
    // Nothing built at run time, so nothing written into the install.
    expect([...snapshot(installed)].filter(([p, t]) => before.get(p) !== t).map(([p]) => p)).toEqual([]);
    expect(seconds).toBeLessThan(60);

    // The man page, linked by npm where man(1) finds it.
    const manFile = join(prefix, 'share', 'man', 'man1', 'tsvisor.1');
    expect(execFileSync('man', ['-l', '-P', 'cat', manFile], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '100' } })).toMatch(
      /tsvisor service install/,
    );

    // `service install` as root: a system user without a login, its data directory 0700, the unit.
    const dataDir = join(dir, 'svc', 'data');
    const unitDir = join(dir, 'units');
    const cli = join(prefix, 'bin', 'tsvisor');
    const said = execFileSync(cli, ['service', 'install', '--user', serviceUser, '--data-dir', dataDir, '--unit-dir', unitDir, '--no-start'], {
      encoding: 'utf8',
    });
    serviceUserMade = true;
    expect(said).toContain(`made the system user ${serviceUser}`);
    const passwd = execFileSync('getent', ['passwd', serviceUser], { encoding: 'utf8' }).trim().split(':');
    expect(passwd[6]).toBe('/usr/sbin/nologin');
    expect(statSync(dataDir)).toMatchObject({ uid: Number(passwd[2]), mode: 0o40700 });
    const unit = readFileSync(join(unitDir, 'tsvisor.service'), 'utf8');
    expect(unit).toContain(`User=${serviceUser}\n`);
    // A second install keeps the user and the directory; someone else's directory is not taken over.
    expect(
      execFileSync(cli, ['service', 'install', '--user', serviceUser, '--data-dir', dataDir, '--unit-dir', unitDir, '--no-start'], { encoding: 'utf8' }),
    ).not.toContain('made the system user');
    const foreign = spawnSync(cli, ['service', 'install', '--user', serviceUser, '--data-dir', home, '--unit-dir', unitDir, '--no-start'], {
      encoding: 'utf8',
    });
    expect(foreign.stderr).toMatch(/belongs to uid \d+, not tsvsvc/);

    // The unit's command, as its user (what systemd would run): it serves, and root manages it.
    const exec = /^ExecStart=(.*)$/m.exec(unit)![1].split(' ');
    const env = Object.fromEntries([...unit.matchAll(/^Environment=([^=]+)=(.*)$/gm)].map((m) => [m[1], m[2]]));
    service = spawn('runuser', ['-u', serviceUser, '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...exec], {
      cwd: '/',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    service.stdout!.on('data', (c) => {
      out += c;
    });
    service.stderr!.on('data', (c) => {
      out += c;
    });
    await vi.waitFor(() => expect(out).toContain('tsvisor: serving'), { timeout: 60_000, interval: 100 });
    expect(JSON.parse(execFileSync(cli, ['vm', '--data-dir', dataDir, 'list', '--json'], { encoding: 'utf8' }))).toEqual([]);
    expect(statSync(join(dataDir, 'vmms.sock')).uid).toBe(Number(passwd[2]));
    service.kill('SIGTERM');
  },
  600_000,
);
