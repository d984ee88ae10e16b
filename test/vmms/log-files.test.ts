/**
 * The process logs are capped and rotated: a flood of lines leaves at most maxFiles files of
 * about maxBytes each, the newest lines in `<process>.log`, in order.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { closeLogger, createProcessLogger } from '../../root-partition/host/log.ts';

describe('log files', () => {
  it('5,000 lines into a 64 KiB × 3 log: capped, rotated, newest last', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tsv-log-'));
    const maxBytes = 64 * 1024,
      maxFiles = 3;
    const log = createProcessLogger({ dataDir, process: 'vmwp-flood', terminal: false, maxBytes, maxFiles });
    for (let i = 0; i < 5_000; i++) log.warn(`devices: vmbus VMBUS_BAD_MESSAGE: line ${i}`);
    await closeLogger(log);
    const dir = join(dataDir, 'logs');
    // closeLogger waits at most 500 ms; the file transport may still be writing and rotating.
    const last = 'devices: vmbus VMBUS_BAD_MESSAGE: line 4999"';
    const current = () => {
      try {
        return readFileSync(join(dir, 'vmwp-flood.log'), 'utf8');
      } catch {
        return '';
      }
    }; // absent for a moment while rotating
    // Settled: the newest file holds the last line and the directory stops changing (a loaded
    // machine can take seconds to finish the writes and renames).
    const snapshot = () =>
      readdirSync(dir)
        .sort()
        .map((f) => {
          try {
            return `${f}:${statSync(join(dir, f)).size}`;
          } catch {
            return f;
          }
        })
        .join(',');
    let before = '';
    for (let t = 0; t < 600; t++) {
      await new Promise((r) => setTimeout(r, 50));
      const now = snapshot();
      if (current().includes(last) && now === before) break;
      before = now;
    }
    const files = readdirSync(dir).sort();
    expect(files.length).toBeLessThanOrEqual(maxFiles);
    expect(files).toContain('vmwp-flood.log');
    let total = 0;
    for (const f of files) {
      const size = statSync(join(dir, f)).size;
      expect(size).toBeLessThanOrEqual(maxBytes + 512); // winston rotates after the line that crosses the cap
      total += size;
    }
    expect(total).toBeLessThan(maxFiles * (maxBytes + 512));
    const newest = readFileSync(join(dir, 'vmwp-flood.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).message as string);
    expect(newest.at(-1)).toBe('devices: vmbus VMBUS_BAD_MESSAGE: line 4999');
    const numbers = newest.map((m) => Number(/line (\d+)/.exec(m)![1]));
    expect(numbers).toEqual(numbers.map((_, i) => numbers[0] + i));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("a transport's error (a stream ended under a rotation, a full disk) is said once on stderr and never thrown", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tsv-log-'));
    const log = createProcessLogger({ dataDir, process: 'vmwp-error', terminal: false });
    const said: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => said.push(String(chunk)) > 0) as typeof process.stderr.write;
    try {
      // winston hands a transport's 'error' to the logger, which throws it when nobody listens.
      expect(() => log.transports[0].emit('error', new Error('write after end'))).not.toThrow();
      expect(() => log.transports[0].emit('error', new Error('again'))).not.toThrow();
    } finally {
      process.stderr.write = write;
    }
    expect(said).toEqual([`tsvisor: the log ${join(dataDir, 'logs', 'vmwp-error.log')} could not be written: write after end\n`]);
    await closeLogger(log);
    rmSync(dataDir, { recursive: true, force: true });
  });
});
