/**
 * What the page knows, kept current by the server's pushes on one event stream (EventSource):
 * every VM's record, jobs, the last minute of counter samples per VM, and — when a console is
 * attached — its output, handed to whoever shows it. The stream reconnects by itself; on each
 * (re)connect the server sends the whole state first.
 */
import type { BenchStatus, CounterSample, WebJob, WebVm } from '../web-port.ts';

export const HISTORY = 60;

export type StoreChange =
  | { kind: 'vm'; id: string }
  | { kind: 'removed'; id: string }
  | { kind: 'counters'; id: string }
  | { kind: 'job'; id: string }
  | { kind: 'bench' }
  | { kind: 'connection'; open: boolean };

export interface ConsoleSink {
  write(bytes: Uint8Array): void;
  dropped(bytes: number): void;
}

export class Store {
  readonly vms = new Map<string, WebVm & { receivedAt: number }>();
  readonly jobs = new Map<string, WebJob>();
  readonly history = new Map<string, CounterSample[]>();
  bench: BenchStatus | null = null;
  private source: EventSource | null = null;
  private consoleVm: string | null = null;
  private sink: ConsoleSink | null = null;
  private readonly listeners = new Set<(c: StoreChange) => void>();

  on(listener: (c: StoreChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** (Re)opens the stream, with the console of `vm` when given. */
  connect(consoleVm: string | null, sink: ConsoleSink | null = null): void {
    if (this.source && this.consoleVm === consoleVm) {
      this.sink = sink;
      return;
    }
    this.source?.close();
    this.consoleVm = consoleVm;
    this.sink = sink;
    const s = new EventSource(consoleVm ? `/api/events?console=${encodeURIComponent(consoleVm)}` : '/api/events');
    this.source = s;
    s.onopen = () => this.tell({ kind: 'connection', open: true });
    s.onerror = () => {
      this.tell({ kind: 'connection', open: false });
      // An HTTP error (a full server, a restart) closes an EventSource for good: ask again later.
      if (s.readyState === EventSource.CLOSED) {
        setTimeout(() => {
          if (this.source !== s) return;
          this.source = null;
          this.connect(this.consoleVm, this.sink);
        }, 3000);
      }
    };
    s.addEventListener('vm', (e) => {
      const vm = JSON.parse((e as MessageEvent<string>).data) as WebVm;
      this.vms.set(vm.id, { ...vm, receivedAt: Date.now() });
      this.tell({ kind: 'vm', id: vm.id });
    });
    s.addEventListener('removed', (e) => {
      const { id } = JSON.parse((e as MessageEvent<string>).data) as { id: string };
      this.vms.delete(id);
      this.history.delete(id);
      this.tell({ kind: 'removed', id });
    });
    s.addEventListener('counters', (e) => {
      const c = JSON.parse((e as MessageEvent<string>).data) as CounterSample & { id: string };
      const list = this.history.get(c.id) ?? [];
      list.push(c);
      if (list.length > HISTORY) list.shift();
      this.history.set(c.id, list);
      this.tell({ kind: 'counters', id: c.id });
    });
    s.addEventListener('job', (e) => {
      const j = JSON.parse((e as MessageEvent<string>).data) as WebJob;
      if (j.jobState < 0) this.jobs.delete(j.id);
      else this.jobs.set(j.id, j);
      this.tell({ kind: 'job', id: j.id });
    });
    s.addEventListener('bench', (e) => {
      this.bench = JSON.parse((e as MessageEvent<string>).data) as BenchStatus;
      this.tell({ kind: 'bench' });
    });
    s.addEventListener('console', (e) => {
      const { data } = JSON.parse((e as MessageEvent<string>).data) as { id: string; data: string };
      this.sink?.write(Uint8Array.from(atob(data), (c) => c.charCodeAt(0)));
    });
    s.addEventListener('console-dropped', (e) => {
      const { bytes } = JSON.parse((e as MessageEvent<string>).data) as { id: string; bytes: number };
      this.sink?.dropped(bytes);
    });
  }

  disconnect(): void {
    this.source?.close();
    this.source = null;
    this.consoleVm = null;
    this.sink = null;
  }

  /** Uptime now, from the record's uptime and the time it arrived (the clock ticks here, not on the server). */
  uptime(vm: WebVm & { receivedAt: number }): number | null {
    return vm.uptimeMs === null ? null : vm.uptimeMs + (Date.now() - vm.receivedAt);
  }

  private tell(c: StoreChange): void {
    for (const l of [...this.listeners]) l(c);
  }
}
