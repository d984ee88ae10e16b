/**
 * The finding this guards against, end to end on a real `tsvisor serve` (run as root, as a host
 * service would be): a local user who is neither root nor the service's user is refused on
 * every way in — CIM-XML without credentials (401), the client socket (no permission) — until
 * the operator gives it a role, and then only that role; and nobody, not even the operator,
 * can name a host file outside the storage roots as a disk, directly or through a symlink,
 * with a refusal that does not tell whether the file exists.
 */
import { spawn } from 'node:child_process';
import { chmodSync, lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VmmsClient } from '../../root-partition/vmms/vmms-client.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { LiveDaemon, run, runAs, TSVISOR, WBEMCLI } from './live-daemon.ts';
import { daemonNodeArgs } from '../helpers/daemon-command.ts';

const NOBODY = 65534;
let daemon: LiveDaemon;
let outside = '';
let secret = '';
const SECRET = Buffer.alloc(8192, 0xa5);

const tsvisor = (args: string[]) => run(process.execPath, [TSVISOR, ...args], 90_000);
function tsvisorWithStdin(args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [TSVISOR, ...args], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 90_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

beforeAll(async () => {
  await buildGuests(['checksum']);
  outside = mkdtempSync(join(tmpdir(), 'tsv-out-'));
  secret = join(outside, 'shadow.raw');
  writeFileSync(secret, SECRET);
  chmodSync(secret, 0o600);
  // As careless as a service manager may be: everything the daemon creates would be world-writable.
  daemon = await LiveDaemon.start({ umask: 0, dataDirMode: 0o777 });
}, 120_000);

afterAll(async () => {
  if (daemon) expect(await daemon.stop()).toEqual([]);
  rmSync(outside, { recursive: true, force: true });
}, 60_000);

describe.skipIf(!WBEMCLI || process.geteuid?.() !== 0)('a local user is not root: the management service as seen by nobody', () => {
  it('closes the data directory (0700) and the client socket (0600): nobody cannot connect to it', async () => {
    expect(lstatSync(daemon.dataDir).mode & 0o777).toBe(0o700);
    expect(lstatSync(daemon.socketPath).mode & 0o777).toBe(0o600);
    const script = `require('net').connect(${JSON.stringify(daemon.socketPath)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); });`;
    const r = await runAs(NOBODY, process.execPath, ['-e', script]);
    expect(r.stdout.trim()).toBe('EACCES');
  });

  it('refuses nobody on CIM-XML without credentials (401) — DefineSystem included — until the operator gives it a role, then only that role', async () => {
    const url = daemon.url();
    const ei = await runAs(NOBODY, WBEMCLI!, ['ein', `${url}:Msvm_ComputerSystem`]);
    expect(ei.stderr).toMatch(/Username\/password required|HTTP response code said error/);
    const svc = `${url}:Msvm_VirtualSystemManagementService.CreationClassName="Msvm_VirtualSystemManagementService",Name="vmms",SystemCreationClassName="Msvm_ComputerSystem",SystemName="x"`;
    const define = await runAs(NOBODY, WBEMCLI!, [
      'cm',
      svc,
      'DefineSystem.SystemSettings="&lt;INSTANCE CLASSNAME=&quot;Msvm_VirtualSystemSettingData&quot;&gt;&lt;/INSTANCE&gt;"',
    ]);
    expect(define.stdout).toBe('');

    const allow = await tsvisor(['user', '--data-dir', daemon.dataDir, 'allow-local', '--uid', String(NOBODY), '--role', 'read-only']);
    expect([allow.code, allow.stderr]).toEqual([0, '']);
    expect(lstatSync(join(daemon.dataDir, 'access.json')).mode & 0o777).toBe(0o600);
    const now = await runAs(NOBODY, WBEMCLI!, ['ei', `${url}:Msvm_ComputerSystem`, 'Description']);
    expect(now.stdout).toContain('Description="Microsoft Hosting Computer System"');
    const stillNo = await runAs(NOBODY, WBEMCLI!, [
      'cm',
      `${url}:Msvm_ComputerSystem.CreationClassName="Msvm_ComputerSystem",Name="nope"`,
      'RequestStateChange.RequestedState=2',
    ]);
    expect(stillNo.stderr).toContain('CIM_ERR_ACCESS_DENIED');

    const deny = await tsvisor(['user', '--data-dir', daemon.dataDir, 'deny-local', '--uid', String(NOBODY)]);
    expect(deny.code).toBe(0);
    const again = await runAs(NOBODY, WBEMCLI!, ['ein', `${url}:Msvm_ComputerSystem`]);
    expect(again.stdout).toBe('');
  }, 120_000);

  it('tsvisor user add reads the password from stdin, stores a hash, and the user logs in over HTTPS; an empty password is refused', async () => {
    const add = await tsvisorWithStdin(['user', '--data-dir', daemon.dataDir, 'add', 'alice', '--role', 'full'], 'correct-h0rse\n');
    expect([add.code, add.stderr]).toEqual([0, '']);
    const stored = readFileSync(join(daemon.dataDir, 'access.json'), 'utf8');
    expect(stored).not.toContain('correct-h0rse');
    expect(stored).toMatch(/"password": "scrypt\$16384\$8\$1\$/);
    const login = await runAs(NOBODY, WBEMCLI!, ['-noverify', 'ein', `${daemon.httpsUrl('alice:correct-h0rse')}:Msvm_VirtualSystemManagementService`]);
    expect(login.stdout).toContain('Name="vmms"');
    const empty = await tsvisorWithStdin(['user', '--data-dir', daemon.dataDir, 'add', 'bob', '--role', 'full'], '\n');
    expect([empty.code, empty.stderr]).toEqual([1, 'tsvisor: an empty password is not allowed\n']);
    expect(readFileSync(join(daemon.dataDir, 'access.json'), 'utf8')).not.toContain('"bob"');
  }, 120_000);

  it('does not start over a plaintext cim-credentials file of earlier releases, and says what to do', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsv-old-'));
    writeFileSync(join(dir, 'cim-credentials'), 'operator:s3cret\n');
    try {
      const r = await run(process.execPath, [...daemonNodeArgs(), '--data-dir', dir, '--cim-port', '0', '--cim-https-port', 'none'], 60_000);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `tsvisor: ${join(dir, 'cim-credentials')} holds plaintext passwords, which are no longer read: add each user with \`tsvisor user add NAME --role full\` (password on stdin), then delete the file\n`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('refuses a disk outside the storage roots — a root-owned 0600 file, a missing file, a symlink in a root — with one sentence', async () => {
    const c = await VmmsClient.connect(daemon.dataDir);
    try {
      const define = (name: string, path: string) =>
        c
          .call('new', {
            name,
            memoryBytes: 16 << 20,
            imagePath: guestImagePath('checksum'),
            devices: [{ kind: 'scsi-controller', disks: [{ location: 0, path }] }],
          })
          .then(
            () => 'defined',
            (e: Error) => e.message.replace(path, '<path>'),
          );
      const link = join(daemon.dataDir, 'disks', 'innocent.raw');
      symlinkSync(secret, link);
      const answers = [
        await define('a', secret),
        await define('b', join(outside, 'no-such.raw')),
        await define('c', link),
        await define('d', `${join(daemon.dataDir, 'disks')}/../../${outside.split('/').pop()}/shadow.raw`),
      ];
      expect(new Set(answers).size).toBe(1);
      expect(answers[0]).toMatch(/^disk image \(SCSI controller 0 location 0\) <path> is not in a storage root this host allows \(/);
      expect(await c.call('list')).toEqual([]);
      // A disk inside a root is fine.
      const disk = join(daemon.dataDir, 'disks', 'ok.raw');
      writeFileSync(disk, Buffer.alloc(4096));
      expect(await define('ok', disk)).toBe('defined');
    } finally {
      c.close();
    }
    expect(readFileSync(secret).equals(SECRET)).toBe(true);
  });
});
