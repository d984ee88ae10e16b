/**
 * One run of the quick I/O benchmark at a time, started from the web console: a child process
 * (bench-run-main.ts) whose progress is reported as it comes and whose report replaces
 * `<data-dir>/bench/io.json` when it succeeds. Stopped with the service.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BenchStatus } from '../management/web/web-port.ts';

const MAIN = fileURLToPath(new URL('./bench-run-main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export class BenchRunner {
  status: BenchStatus = { running: false, done: 0, total: 0, step: '', error: null, finishedAt: null };
  private child: ChildProcess | null = null;

  constructor(
    private readonly out: string,
    private readonly onChange: (s: BenchStatus) => void,
    private readonly tiny = false,
  ) {}

  /** False when a run is under way already. */
  start(): boolean {
    if (this.child) return false;
    const child = fork(MAIN, [this.out, ...(this.tiny ? ['--tiny'] : [])], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.child = child;
    let stderr = '';
    let outcome: string | null | undefined;
    child.stderr!.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString()).slice(-2000);
    });
    child.on('message', (m: { kind: string; done?: number; total?: number; next?: string; message?: string }) => {
      if (m.kind === 'step') this.set({ done: m.done ?? 0, total: m.total ?? 0, step: m.next ?? '' });
      else if (m.kind === 'done') outcome = null;
      else if (m.kind === 'error') outcome = m.message ?? 'the benchmark failed';
    });
    child.on('exit', (code, signal) => {
      this.child = null;
      const error =
        outcome === null && code === 0 ? null : (outcome ?? `the benchmark process ended (${signal ?? code}): ${stderr.trim().split('\n').pop() ?? ''}`);
      this.set({ running: false, error, finishedAt: new Date().toISOString() });
    });
    this.set({ running: true, done: 0, total: 0, step: 'starting', error: null, finishedAt: null });
    return true;
  }

  close(): void {
    this.child?.kill('SIGKILL');
  }

  private set(change: Partial<BenchStatus>): void {
    this.status = { ...this.status, ...change };
    this.onChange(this.status);
  }
}
