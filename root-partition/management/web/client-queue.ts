/**
 * What one browser has still to receive, bounded whatever the browser's speed: a slow reader
 * never makes the VMMS hold more, nor wait. State is coalesced — for each VM only its newest
 * record, counter sample and each job's newest state are kept (drop-to-latest) — and console
 * bytes are kept up to `consoleBytes` per client: past that the oldest queued bytes go and the
 * count of what went is delivered first, so the page can say "output dropped" where the gap is.
 *
 * The server takes frames out with `next()` only while the connection's own buffer is below its
 * high-water mark (web-server.ts), so the bytes in flight to one client are bounded too.
 */
import type { BenchStatus, CounterSample, WebJob, WebVm } from './web-port.ts';

export const DEFAULT_CONSOLE_QUEUE_BYTES = 256 * 1024;

export type ClientFrame =
  | { event: 'vm'; data: WebVm }
  | { event: 'removed'; data: { id: string } }
  | { event: 'counters'; data: CounterSample & { id: string } }
  | { event: 'job'; data: WebJob }
  | { event: 'bench'; data: BenchStatus }
  | { event: 'console'; data: { id: string; data: string } }
  | { event: 'console-dropped'; data: { id: string; bytes: number } };

export class ClientQueue {
  private readonly vms = new Map<string, WebVm | null>();
  private readonly counters = new Map<string, CounterSample>();
  private readonly jobs = new Map<string, WebJob>();
  private benchStatus: BenchStatus | null = null;
  private consoleChunks: Buffer[] = [];
  private consoleQueued = 0;
  private consoleDropped = 0;
  /** Totals, for tests and the page's own diagnostics. */
  droppedConsoleBytes = 0;
  replacedRecords = 0;

  constructor(
    readonly consoleVm: string | null,
    private readonly consoleBytes = DEFAULT_CONSOLE_QUEUE_BYTES,
  ) {}

  vm(id: string, record: WebVm | null): void {
    if (this.vms.has(id)) this.replacedRecords++;
    this.vms.delete(id);
    this.vms.set(id, record);
  }

  sample(id: string, s: CounterSample): void {
    if (this.counters.has(id)) this.replacedRecords++;
    this.counters.set(id, s);
  }

  job(j: WebJob): void {
    if (this.jobs.has(j.id)) this.replacedRecords++;
    this.jobs.set(j.id, j);
  }

  bench(s: BenchStatus): void {
    if (this.benchStatus) this.replacedRecords++;
    this.benchStatus = s;
  }

  console(id: string, data: Uint8Array): void {
    if (id !== this.consoleVm || data.length === 0) return;
    let b = Buffer.from(data);
    if (b.length > this.consoleBytes) {
      this.drop(b.length - this.consoleBytes);
      b = b.subarray(b.length - this.consoleBytes);
    }
    this.consoleChunks.push(b);
    this.consoleQueued += b.length;
    while (this.consoleQueued > this.consoleBytes) {
      const old = this.consoleChunks.shift()!;
      this.consoleQueued -= old.length;
      this.drop(old.length);
    }
  }

  private drop(n: number): void {
    this.consoleDropped += n;
    this.droppedConsoleBytes += n;
  }

  get empty(): boolean {
    return (
      this.vms.size === 0 &&
      this.counters.size === 0 &&
      this.jobs.size === 0 &&
      this.benchStatus === null &&
      this.consoleChunks.length === 0 &&
      this.consoleDropped === 0
    );
  }

  /** Console bytes waiting now (never more than the bound). */
  get queuedConsoleBytes(): number {
    return this.consoleQueued;
  }

  /** The next frame to send: state first (it is small and decides what the page shows), then the console. */
  next(): ClientFrame | null {
    for (const [id, record] of this.vms) {
      this.vms.delete(id);
      return record ? { event: 'vm', data: record } : { event: 'removed', data: { id } };
    }
    for (const [id, s] of this.counters) {
      this.counters.delete(id);
      return { event: 'counters', data: { id, ...s } };
    }
    for (const [id, j] of this.jobs) {
      this.jobs.delete(id);
      return { event: 'job', data: j };
    }
    if (this.benchStatus) {
      const data = this.benchStatus;
      this.benchStatus = null;
      return { event: 'bench', data };
    }
    if (this.consoleDropped > 0) {
      const bytes = this.consoleDropped;
      this.consoleDropped = 0;
      return { event: 'console-dropped', data: { id: this.consoleVm!, bytes } };
    }
    if (this.consoleChunks.length > 0) {
      // Chunks are joined up to 16 KiB a frame: fewer, larger frames for a chatty guest.
      const parts: Buffer[] = [];
      let n = 0;
      while (this.consoleChunks.length > 0 && n < 16 * 1024) {
        const c = this.consoleChunks.shift()!;
        parts.push(c);
        n += c.length;
      }
      this.consoleQueued -= n;
      return { event: 'console', data: { id: this.consoleVm!, data: Buffer.concat(parts).toString('base64') } };
    }
    return null;
  }
}

/** A frame in the text/event-stream format (WHATWG HTML §9.2): one `event:` and one `data:` line. */
export function sseFrame(f: ClientFrame): string {
  return `event: ${f.event}\ndata: ${JSON.stringify(f.data)}\n\n`;
}
