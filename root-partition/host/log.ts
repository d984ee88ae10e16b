/**
 * Logs of the root partition's processes (winston): JSON lines to a file in the data directory
 * (`logs/<process>.log`), readable lines on a terminal, a child logger per component and per VM
 * (`log.child({ component: 'lifecycle', vmId })`). Per-packet tracing is off unless the
 * component is named in TSVISOR_TRACE (comma-separated, or `*`), so hot paths test one boolean.
 * Each file is capped and rotated (winston's File transport, `tailable`): `<process>.log` is the
 * newest, `<process>1.log` … `<process><maxFiles-1>.log` older ones, the oldest deleted, so a
 * process's logs never take more than maxBytes × maxFiles of disk, whatever a guest provokes.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import winston from 'winston';

export type Logger = winston.Logger;

export interface LogOptions {
  dataDir: string;
  /** File name without extension: `vmms`, `vmwp-<id>`. */
  process: string;
  /** Also write readable lines to stderr (default: when stderr is a terminal). */
  terminal?: boolean;
  level?: string;
  /** Size at which the file is rotated (default TSVISOR_LOG_MAX_BYTES, else 10 MiB). */
  maxBytes?: number;
  /** Files kept, the current one included (default TSVISOR_LOG_MAX_FILES, else 5). */
  maxFiles?: number;
}

export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_LOG_MAX_FILES = 5;

function positiveEnv(name: string): number | undefined {
  const n = Number(process.env[name]);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

export function createProcessLogger(opts: LogOptions): Logger {
  const dir = join(opts.dataDir, 'logs');
  mkdirSync(dir, { recursive: true });
  const transports: winston.transport[] = [
    new winston.transports.File({
      filename: join(dir, `${opts.process}.log`),
      maxsize: opts.maxBytes ?? positiveEnv('TSVISOR_LOG_MAX_BYTES') ?? DEFAULT_LOG_MAX_BYTES,
      maxFiles: opts.maxFiles ?? positiveEnv('TSVISOR_LOG_MAX_FILES') ?? DEFAULT_LOG_MAX_FILES,
      tailable: true,
      format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    }),
  ];
  if (opts.terminal ?? process.stderr.isTTY) {
    transports.push(
      new winston.transports.Stream({
        stream: process.stderr,
        format: winston.format.combine(
          winston.format.timestamp({ format: 'HH:mm:ss.SSS' }),
          winston.format.printf((i) => {
            const who = [i.component, i.vmName ?? i.vmId].filter(Boolean).join(' ');
            return `${i.timestamp} ${i.level.padEnd(5)} ${who ? `[${who}] ` : ''}${i.message}`;
          }),
        ),
      }),
    );
  }
  const log = winston.createLogger({
    level: opts.level ?? process.env.TSVISOR_LOG_LEVEL ?? 'info',
    defaultMeta: { process: opts.process, pid: process.pid },
    transports,
  });
  // A transport's error comes back as the logger's 'error' event, which would be thrown with no
  // listener: a log that cannot be written (a full disk, a stream ended under a rotation) is said
  // once on stderr and never takes the process down.
  let reported = false;
  log.on('error', (e: Error) => {
    if (reported) return;
    reported = true;
    process.stderr.write(`tsvisor: the log ${join(dir, `${opts.process}.log`)} could not be written: ${e.message}\n`);
  });
  return log;
}

/** Lines the logger and its transports still hold. */
function pendingLines(log: Logger): number {
  return log.readableLength + log.writableLength + log.transports.reduce((n, t) => n + (t.writableLength ?? 0), 0);
}

/** Closes the logger's transports after they flushed (a process about to exit loses no lines). */
export async function closeLogger(log: Logger, timeoutMs = 500): Promise<void> {
  // Ended while its File transport is rotating (a new file opening, lines held back), winston
  // could still hand that transport lines after ending it ("write after end"): end only once
  // everything buffered has been written, within the same time budget.
  const deadline = Date.now() + timeoutMs;
  while (pendingLines(log) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        resolve();
      }
    };
    log.on('finish', finish);
    setTimeout(finish, Math.max(50, deadline - Date.now())).unref();
    log.end();
  });
}

const traced = new Set(
  (process.env.TSVISOR_TRACE ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

/** True when TSVISOR_TRACE names `component` (or is `*`). */
export function tracing(component: string): boolean {
  return traced.has('*') || traced.has(component);
}
