/**
 * Test fixture for VMMS tests: temporary data directories, VMMS instances, and a record of every
 * worker (and daemon) process the tests start, so `cleanup()` can stop them and report any that
 * were still alive — the suite must leave no process behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Vmms, type VmmsOptions } from '../../root-partition/vmms/vmms.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';
import { vi } from 'vitest';
import { daemonNodeArgs } from '../helpers/daemon-command.ts';

export const MiB = 1024 * 1024;

/** Alive and not a zombie (a killed child stays one until its parent's event loop reaps it). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** vitest's waitFor, for a probe that answers a falsy value until the condition holds (sync or async). */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 15_000,
): Promise<T> {
  try {
    return await vi.waitFor(
      async () => {
        const v = await probe();
        if (!v) throw new Error('not yet');
        return v;
      },
      { timeout: timeoutMs, interval: 20 },
    );
  } catch {
    throw new Error(`timed out waiting for ${what}`);
  }
}

export async function testImages(): Promise<{ checksum: string; hello: string; probe: string; memoryWriter: string }> {
  await buildGuests(['checksum', 'hello', 'probe', 'memory-writer']);
  return {
    checksum: guestImagePath('checksum'),
    hello: guestImagePath('hello'),
    probe: guestImagePath('probe'),
    memoryWriter: guestImagePath('memory-writer'),
  };
}

export class VmmsFixture {
  readonly pids = new Set<number>();
  /** Daemon processes this fixture started (`daemon`): killed at cleanup if still running. */
  readonly daemons = new Set<ChildProcess>();
  private readonly dirs: string[] = [];
  private readonly open = new Set<Vmms>();

  dataDir(): string {
    // Short: Unix socket paths are limited to 107 bytes.
    const d = mkdtempSync(join(tmpdir(), 'tsv-'));
    this.dirs.push(d);
    return d;
  }

  async vmms(opts: Partial<VmmsOptions> & { dataDir: string }): Promise<Vmms> {
    const v = await Vmms.open({ workerStartTimeoutMs: 60_000, ...opts });
    this.open.add(v);
    const note = () => {
      for (const vm of v.list()) if (vm.processId) this.pids.add(vm.processId);
    };
    note();
    v.events.on('state-changed', note);
    return v;
  }

  /** What each daemon started here printed (stdout and stderr). */
  readonly daemonOutput = new Map<ChildProcess, () => string>();

  /** A real `tsvisor serve` process on `dataDir` (with `args`); resolves once it serves, rejects if it exits first. */
  async daemon(dataDir: string, args: string[] = [], command: string[] = []): Promise<ChildProcess> {
    const d = spawn(
      command[0] ?? process.execPath,
      [...command.slice(1), ...(command.length ? [process.execPath] : []), ...daemonNodeArgs(), '--data-dir', dataDir, ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.daemons.add(d);
    this.pids.add(d.pid!);
    let out = '';
    d.stdout!.on('data', (c) => {
      out += c;
    });
    d.stderr!.on('data', (c) => {
      out += c;
    });
    this.daemonOutput.set(d, () => out);
    await waitFor(`the daemon to serve (${out})`, () => out.includes('tsvisor: serving') || d.exitCode !== null, 60_000);
    if (d.exitCode !== null) throw new Error(`the daemon exited: ${out}`);
    return d;
  }

  /** Closes a VMMS; by default leaving its VMs running (as a VMMS restart does). */
  async detach(v: Vmms): Promise<void> {
    this.open.delete(v);
    await v.close({ stopVms: false });
  }

  /** Stops every VMMS (applying stop actions), then reports and kills any process still alive. */
  async cleanup(): Promise<number[]> {
    const exits: Promise<unknown>[] = [];
    for (const d of this.daemons) {
      if (d.exitCode !== null || d.signalCode !== null) continue;
      exits.push(new Promise((r) => d.once('exit', r)));
      d.kill('SIGKILL');
    }
    for (const v of this.open) await v.close({ stopVms: true }).catch(() => {});
    this.open.clear();
    // A loaded host can take a while to run a killed process's exit: wait for it, within bounds.
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 5000))]);
    await new Promise((r) => setTimeout(r, 200));
    const alive = [...this.pids].filter(processAlive);
    for (const pid of alive) process.kill(pid, 'SIGKILL');
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
    return alive;
  }
}
