import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tsvisor.mjs');

describe('tsvisor run', () => {
  it('boots the sample guest through the real binary and streams its console until it halts', () => {
    const r = spawnSync(process.execPath, [BIN, 'run', 'hello', '--memory', '32M', '--counters'], { encoding: 'utf8', timeout: 30_000, input: '' });
    expect(r.stdout).toContain('tsvisor sample guest: 32768 KiB RAM, 1 VP');
    expect(r.stdout).toContain('5 timer interrupts at 10 ms');
    expect(r.stderr).toContain('VP 0: halted with interrupts disabled (stopped for good)');
    expect(r.stderr).toMatch(/"TimerExpiries":[5-9]/);
    expect(r.status).toBe(0);
  });

  it('reports a faulting guest and exits non-zero', () => {
    const r = spawnSync(process.execPath, [BIN, 'run', 'probe', '--cmdline', 'gp'], { encoding: 'utf8', timeout: 30_000, input: '' });
    expect(r.stderr).toContain('VP 0: guest fault (gp): rdmsr 0x1234: #GP');
    expect(r.status).toBe(1);
  });

  it('refuses a file that is not a guest image with a clear error', () => {
    const r = spawnSync(process.execPath, [BIN, 'run', BIN], { encoding: 'utf8', timeout: 30_000, input: '' });
    expect(r.stderr).toContain('guest image is not a valid WebAssembly module: missing \\0asm magic');
    expect(r.status).toBe(1);
  });

  it('feeds a pipe on stdin to COM1: a scripted session with the reference shell', () => {
    const r = spawnSync(process.execPath, [BIN, 'run', 'ref-emulated'], { encoding: 'utf8', timeout: 30_000, input: 'echo piped words\nshutdown\n' });
    expect(r.stdout).toContain('tsvisor> piped words\n');
    expect(r.stderr).toContain('VP 0: halted with interrupts disabled (stopped for good)');
    expect(r.status).toBe(0);
  });
});
