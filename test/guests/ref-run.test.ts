/**
 * `tsvisor run --scsi` through the real binary: raw files as synthetic SCSI LUNs, offered on VMBus
 * with the integration services, which the enlightened reference image attaches and opens (the
 * IDE path of `--disk` is covered by test/cli and the in-process tests). Standard input is not a terminal here, so the test waits for the
 * banner and the prompt and then interrupts the run as a user's Ctrl-C would.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PROMPT, tempDisk } from './shell-rig.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tsvisor.mjs');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function runUntilPrompt(args: string[]): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no prompt; stdout:\n${stdout}\nstderr:\n${stderr}`));
    }, 60_000);
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString('latin1');
      if (stdout.includes(PROMPT)) child.kill('SIGINT');
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
  });
}

describe('tsvisor run with the reference images', () => {
  it('ref-enlightened attaches the --scsi files over VMBus and opens the integration services', async () => {
    const { dir, file } = tempDisk(4096);
    dirs.push(dir);
    const r = await runUntilPrompt(['ref-enlightened', '--scsi', file]);
    expect(r.stdout, r.stderr).toContain(
      'VMBus connected\nintegration services: 4 of 4 open (heartbeat, shutdown, time sync, kvp)\n1 disk attached; type help\ntsvisor> ',
    );
    expect(r.stderr).toContain('interrupted');
  });
});
