/**
 * A real `tsvisor serve` (the daemon entry, without the rest of the CLI) on a temporary data
 * directory with CIM-XML on a free loopback port, for black-box tests with wbemcli, the typed
 * client and the tsvisor binary. `stop()` ends the daemon and every worker it started, and says
 * which processes were still alive.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManagementClient } from '../../root-partition/management/client/management-client.ts';
import type { LocalGrant } from '../../root-partition/management/access/access-file.ts';
import { writeTestAccess, type TestUser } from './access-fixture.ts';
import { vi } from 'vitest';
import { daemonNodeArgs } from '../helpers/daemon-command.ts';

export const TSVISOR = fileURLToPath(new URL('../../bin/tsvisor.mjs', import.meta.url));
export const WBEMCLI = ['/usr/bin/wbemcli', '/usr/local/bin/wbemcli'].find((p) => existsSync(p));

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(file: string, args: string[], timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

/** As `run`, in a process running as another user (tests run as root; 65534 is nobody). */
export function runAs(uid: number, file: string, args: string[], timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { timeout: timeoutMs, uid, gid: uid, cwd: '/', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp' } },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class LiveDaemon {
  readonly workers = new Set<number>();
  private constructor(
    readonly dataDir: string,
    readonly process: ChildProcess,
    readonly cimPort: number,
    readonly httpsPort: number,
    readonly output: () => string,
  ) {}

  /**
   * `users`: HTTP Basic users in access.json; `local`: roles of local users; `storageRoots`:
   * directories (besides the defaults) the VMs' disks and images may come from; `umask`: the
   * daemon's (as a service manager might leave it), `dataDirMode`: the directory's mode before start.
   */
  static async start(
    opts: { users?: TestUser[]; local?: LocalGrant[]; storageRoots?: string[]; umask?: number; dataDirMode?: number; extraArgs?: string[] } = {},
  ): Promise<LiveDaemon> {
    const dataDir = mkdtempSync(join(tmpdir(), 'tsv-m-'));
    if (opts.dataDirMode !== undefined) chmodSync(dataDir, opts.dataDirMode);
    if (opts.users || opts.local) await writeTestAccess(dataDir, opts.users ?? [], opts.local ?? []);
    const args = [
      ...daemonNodeArgs(),
      '--data-dir',
      dataDir,
      '--cim-port',
      '0',
      '--cim-https-port',
      '0',
      ...(opts.storageRoots ?? []).flatMap((r) => ['--storage-root', r]),
      ...(opts.extraArgs ?? []),
    ];
    const d =
      opts.umask === undefined
        ? spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('/bin/sh', ['-c', `umask ${opts.umask.toString(8)}; exec "$0" "$@"`, process.execPath, ...args], {
            stdio: ['ignore', 'pipe', 'pipe'],
          });
    let out = '';
    d.stdout!.on('data', (c) => {
      out += c;
    });
    d.stderr!.on('data', (c) => {
      out += c;
    });
    await vi
      .waitFor(
        () => {
          if (!out.includes('tsvisor: serving') && d.exitCode === null) throw new Error('not serving yet');
        },
        { timeout: 60_000, interval: 50 },
      )
      .catch(() => {});
    const port = /CIM-XML on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
    const https = /CIM-XML on https:\/\/127\.0\.0\.1:(\d+)/.exec(out);
    if (!port || d.exitCode !== null) {
      d.kill('SIGKILL');
      throw new Error(`the daemon did not come up: ${out}`);
    }
    return new LiveDaemon(dataDir, d, Number(port[1]), https ? Number(https[1]) : -1, () => out);
  }

  get socketPath(): string {
    return join(this.dataDir, 'vmms.sock');
  }

  client(): Promise<ManagementClient> {
    return ManagementClient.connect(this.socketPath);
  }

  /** wbemcli's URL prefix, with credentials when given. */
  url(credentials = ''): string {
    return `http://${credentials ? `${credentials}@` : ''}127.0.0.1:${this.cimPort}/root/virtualization/v2`;
  }

  /** The same over HTTPS (wbemcli needs -noverify or -cacert with it). */
  httpsUrl(credentials = ''): string {
    return `https://${credentials ? `${credentials}@` : ''}127.0.0.1:${this.httpsPort}/root/virtualization/v2`;
  }

  /** The certificate the daemon made at first start. */
  get certFile(): string {
    return join(this.dataDir, 'cim-tls.crt');
  }

  /** Remember a VM's worker so that stop() can prove it is gone. */
  noteWorker(pid: unknown): void {
    if (typeof pid === 'number') this.workers.add(pid);
  }

  /** SIGTERM (VMs get their stop action), then SIGKILL for anything left; returns pids still alive before the kill. */
  async stop(): Promise<number[]> {
    const exited = new Promise<void>((r) => {
      if (this.process.exitCode !== null) r();
      else this.process.once('exit', () => r());
    });
    this.process.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
    const left = [this.process.pid!, ...this.workers].filter(alive);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    rmSync(this.dataDir, { recursive: true, force: true });
    return left;
  }

  log(): string {
    try {
      return readFileSync(join(this.dataDir, 'logs', 'vmms.log'), 'utf8').slice(-3000);
    } catch {
      return '';
    }
  }
}
