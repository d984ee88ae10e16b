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
  return winston.createLogger({
    level: opts.level ?? process.env.TSVISOR_LOG_LEVEL ?? 'info',
    defaultMeta: { process: opts.process, pid: process.pid },
    transports,
  });
}

/** Closes the logger's transports after they flushed (a process about to exit loses no lines). */
export function closeLogger(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        resolve();
      }
    };
    log.on('finish', finish);
    setTimeout(finish, 500).unref();
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
