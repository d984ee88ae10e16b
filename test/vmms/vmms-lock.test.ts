/**
 * The data directory's lock with real daemon processes: a second daemon is refused naming the
 * first and leaves its socket alone; a daemon killed with SIGKILL is replaced at once, before its
 * process is even reaped (a zombie holds no lock; a pid file would still name it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { VmmsClient } from '../../root-partition/vmms/vmms-client.ts';
import { processAlive, VmmsFixture, waitFor } from './vmms-fixture.ts';
import { daemonNodeArgs } from '../helpers/daemon-command.ts';

const fx = new VmmsFixture();
const daemons = new Set<ChildProcess>();

afterAll(async () => {
  for (const d of daemons) {
    if (d.exitCode === null && d.signalCode === null) {
      d.kill('SIGKILL');
      await once(d, 'exit');
    }
  }
  expect(await fx.cleanup()).toEqual([]);
});

/** Starts a daemon; resolves when it serves or has exited, with what it printed. */
async function daemon(dataDir: string): Promise<{ d: ChildProcess; out: () => string }> {
  const d = spawn(process.execPath, [...daemonNodeArgs(), '--data-dir', dataDir, '--cim-port', 'none'], { stdio: ['ignore', 'pipe', 'pipe'] });
  daemons.add(d);
  fx.pids.add(d.pid!);
  let out = '';
  d.stdout!.on('data', (c) => {
    out += c;
  });
  d.stderr!.on('data', (c) => {
    out += c;
  });
  await waitFor(`the daemon to serve or exit (${out})`, () => out.includes('tsvisor: serving') || d.exitCode !== null, 60_000);
  return { d, out: () => out };
}

async function answers(dataDir: string): Promise<boolean> {
  const c = await VmmsClient.connect(dataDir);
  try {
    return Array.isArray(await c.call('list'));
  } finally {
    c.close();
  }
}

describe('VMMS data directory lock', () => {
  it('a second daemon is refused naming the first; kill -9 of the first lets a new one start at once', { timeout: 120_000 }, async () => {
    const dataDir = fx.dataDir();
    const first = await daemon(dataDir);
    expect(first.out()).toContain('tsvisor: serving');
    expect(readFileSync(`${dataDir}/vmms.pid`, 'utf8')).toBe(`${first.d.pid}\n`);

    const second = await daemon(dataDir);
    await waitFor('the second daemon to exit', () => second.d.exitCode !== null);
    expect(second.d.exitCode).toBe(1);
    expect(second.out()).toBe(`tsvisor: another management service (process ${first.d.pid}) runs on ${dataDir}\n`);
    // The first still owns its socket and its pid file.
    expect(await answers(dataDir)).toBe(true);
    expect(readFileSync(`${dataDir}/vmms.pid`, 'utf8')).toBe(`${first.d.pid}\n`);

    // SIGKILL, and start the next one without waiting for the first to be reaped.
    first.d.kill('SIGKILL');
    const third = await daemon(dataDir);
    expect(third.out()).toContain('tsvisor: serving');
    expect(await answers(dataDir)).toBe(true);
    expect(readFileSync(`${dataDir}/vmms.pid`, 'utf8')).toBe(`${third.d.pid}\n`);
    third.d.kill('SIGTERM');
    await waitFor('the third daemon to stop', () => third.d.exitCode !== null, 30_000);
    expect(third.d.exitCode).toBe(0);
    await waitFor('the first daemon to be gone', () => !processAlive(first.d.pid!), 5000);
  });
});
