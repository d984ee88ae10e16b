/**
 * The child SDK's test harness: boots a guest image in a child partition of this process against
 * the real host side (hypervisor, VP threads, SynIC, VMBus host and the VSPs you give it), and
 * exposes what a test asserts on: the COM1 console, key=value lines, the VP counters and exit,
 * and the VMBus traffic (host totals, per-channel stats, protocol errors).
 *
 *   const h = await GuestHarness.boot({ image: 'build/my-guest.wasm', vsps: [new MyVsp()] });
 *   await h.waitFor('done\n');
 *   expect(h.values().replies).toBe(10);
 *   await h.dispose();
 *
 * Everything the harness starts (VP threads, the root inbox loop, IC timers) is stopped by
 * `dispose()`, which a test calls in afterEach.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import type { HvError } from '../../hypervisor/hv-error.ts';
import { PartitionProperty, type Partition, type PartitionConfig } from '../../hypervisor/partition.ts';
import type { InterceptHandler } from '../../hypervisor/root-inbox.ts';
import type { VpCounterName } from '../../hypervisor/partition-control.ts';
import type { VpExitReason } from '../../hypervisor/vp/vp-events.ts';
import { VmbusHost, type VmbusHostStats } from '../../vmbus/host/vmbus-host.ts';
import type { VspChannelStats } from '../../vmbus/host/vsp-channel.ts';
import type { Vsp } from '../../vmbus/host/vsp.ts';
import { buildGuests, guestImagePath, listGuests } from '../../scripts/build-guests.ts';
import { buildHost } from '../../scripts/build-host.ts';
import { IntegrationServices, type IntegrationServicesOptions } from '../vsp/ic/integration-services.ts';

const COM1_DATA = 0x3f8;
const COM1_LSR = 0x3fd;

export interface GuestHarnessOptions {
  /** A `.wasm` path, a built-in guest name (child-sdk/guests/<name>), or the image bytes. */
  image: string | Uint8Array;
  /** The boot-information command line the guest reads (cmdlineHas). */
  cmdline?: string;
  /** Guest memory (default 16 MiB), VPs (default 1), and other partition settings. */
  partition?: Partial<PartitionConfig>;
  /** VSPs offered on the guest's VMBus, in relid order. */
  vsps?: Vsp[];
  /** Offer the four integration services too (heartbeat, shutdown, time sync, KVP). */
  integrationServices?: boolean | Omit<IntegrationServicesOptions, 'referenceTime' | 'log'>;
  /** Port I/O the guest does besides COM1 (emulated devices); COM1 is always captured. */
  handler?: Partial<InterceptHandler>;
  /** Default for waitFor (ms, default 10000). */
  timeoutMs?: number;
}

/** What crossed VMBus, for assertions on protocol behaviour. */
export interface VmbusTraffic {
  host: VmbusHostStats;
  /** Open channels by relid. */
  channels: Record<number, VspChannelStats>;
  /** Protocol errors and channel resets the host reported (the host carries on after each). */
  errors: HvError[];
  messagesToGuest: { sent: number; deferred: number; dropped: number; pending: number };
}

export class GuestHarness {
  private out = '';
  private readonly waiters: (() => void)[] = [];
  private readonly abort = new AbortController();
  private serving: Promise<void> = Promise.resolve();
  private disposed = false;
  /** How the first VP that failed (a fault or panic) ended: every wait fails with it at once. */
  private failure: string | null = null;
  /** Errors the VMBus host and the integration services reported. */
  readonly errors: HvError[] = [];
  vmbus: VmbusHost | null = null;
  ic: IntegrationServices | null = null;

  private constructor(
    readonly hv: Hypervisor,
    readonly partition: Partition,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Creates, loads and starts the partition. Built-in guest names are compiled first (cached);
   * the VP thread bundle is rebuilt when stale. Resolves once VP 0 runs.
   */
  static async boot(o: GuestHarnessOptions): Promise<GuestHarness> {
    await buildHost();
    const bytes = await loadImage(o.image);
    const hv = new Hypervisor();
    const partition = hv.createPartition({ memoryBytes: 16 << 20, vpCount: 1, waitPolicy: { spinIterations: 0 }, ...o.partition });
    const h = new GuestHarness(hv, partition, o.timeoutMs ?? 10_000);
    partition.initialize();
    partition.loadImage(bytes, o.cmdline ?? '');
    partition.inbox.handler = {
      ioRead: (_vp, port) => (port === COM1_LSR ? 0x60 : 0xff), // LSR: transmitter empty
      ioWrite: (_vp, port, _size, v) => {
        if (port === COM1_DATA) h.append(String.fromCharCode(v & 0xff));
      },
      ioReadString: (_vp, _port, _size, dst) => {
        dst.fill(0xff);
      },
      ioWriteString: (_vp, port, _size, src) => {
        if (port === COM1_DATA) h.append(Buffer.from(src).toString('latin1'));
      },
      ...o.handler,
    };
    h.serving = partition.inbox.serveAsync(h.abort.signal);
    const log = (e: HvError) => h.errors.push(e);
    if ((o.vsps?.length ?? 0) > 0 || o.integrationServices) {
      h.vmbus = new VmbusHost(partition, { log });
      for (const vsp of o.vsps ?? []) h.vmbus.addVsp(vsp);
      if (o.integrationServices) {
        const icOptions = typeof o.integrationServices === 'object' ? o.integrationServices : {};
        h.ic = new IntegrationServices({ ...icOptions, referenceTime: () => partition.getProperty(PartitionProperty.ReferenceTime).value, log });
        h.ic.addTo(h.vmbus);
      }
    }
    partition.on('vp-exit', ({ vp, exit }: { vp: number; exit: VpExitReason }) => {
      if (exit.reason !== 'fault' || h.failure) return;
      h.failure = `VP ${vp}: guest ${exit.kind === 'panic' ? 'panic' : `fault (${exit.kind})`}: ${exit.message}`;
      for (const w of h.waiters.splice(0)) w();
    });
    partition.start();
    return h;
  }

  private append(s: string): void {
    this.out += s;
    for (const w of this.waiters.splice(0)) w();
  }

  /** Everything the guest wrote to COM1 so far. */
  console(): string {
    return this.out;
  }

  /** The complete `key=number` lines of the console (the convention of the SDK's test guests); later lines win. */
  values(): Record<string, number> {
    const lines = this.out.split('\n').slice(0, -1);
    return Object.fromEntries(
      lines
        .filter((l) => /^\w+=\d+$/.test(l))
        .map((l) => {
          const [k, v] = l.split('=');
          return [k!, Number(v)];
        }),
    );
  }

  /** Resolves when the console contains `text` (a string, or a pattern tested against the whole console). */
  waitFor(text: string | RegExp, timeoutMs = this.timeoutMs): Promise<void> {
    const seen = () => (typeof text === 'string' ? this.out.includes(text) : text.test(this.out));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${String(text)}; console so far:\n${this.out}`)), timeoutMs);
      const check = () => {
        if (seen()) {
          clearTimeout(t);
          resolve();
        }
        // A guest that failed will never print it: say why now instead of timing out.
        else if (this.failure) {
          clearTimeout(t);
          reject(new Error(`${this.failure} (while waiting for ${String(text)}); console so far:\n${this.out}`));
        } else this.waiters.push(check);
      };
      check();
    });
  }

  /** Resolves when every VP has stopped (halted with interrupts off, or failed); rejects after `timeoutMs`. */
  async waitForHalt(timeoutMs = this.timeoutMs): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`the guest did not halt within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.partition.whenIdle(), timeout]);
    } finally {
      clearTimeout(t);
    }
  }

  /** VP `vp`'s exit and interrupt counters (the hypervisor's per-VP statistics). */
  counters(vp = 0): Record<VpCounterName, number> {
    return this.partition.counters(vp);
  }

  /** Why VP `vp` stopped ({ reason: 'halted' } after a clean halt), or undefined while it runs. */
  vpExit(vp = 0) {
    return this.partition.vpExit(vp);
  }

  /** VMBus totals, each open channel's stats, and the errors the host reported. */
  vmbusTraffic(): VmbusTraffic {
    const host = this.vmbus;
    const channels: Record<number, VspChannelStats> = {};
    if (host)
      for (let relid = 1; relid <= 64; relid++) {
        const c = host.channel(relid);
        if (c) channels[relid] = { ...c.stats };
      }
    return {
      host: host
        ? { ...host.stats }
        : {
            messagesFromGuest: 0,
            packetsIn: 0,
            packetsOut: 0,
            signalsToGuest: 0,
            signalsFromGuest: 0,
            protocolErrors: 0,
            channelsOpened: 0,
            channelsRefused: 0,
            channelResets: 0,
            guestMessagesHeldBack: 0,
          },
      channels,
      errors: [...this.errors],
      messagesToGuest: host ? host.messagesToGuest : { sent: 0, deferred: 0, dropped: 0, pending: 0 },
    };
  }

  /** Stops the VPs, the root inbox loop and the IC timers, and shuts the hypervisor down. Safe to call twice. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.ic?.dispose();
    await this.partition.stop();
    this.abort.abort();
    await this.serving;
    this.vmbus?.dispose();
    await this.hv.shutdown();
  }
}

async function loadImage(image: string | Uint8Array): Promise<Uint8Array> {
  if (typeof image !== 'string') return image;
  if (existsSync(image)) return readFileSync(image);
  if (listGuests().includes(image)) {
    await buildGuests([image]);
    return readFileSync(guestImagePath(image));
  }
  throw new Error(`no guest image ${image}: not a file and not one of ${listGuests().join(', ')}`);
}
