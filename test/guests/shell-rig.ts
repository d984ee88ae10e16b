/**
 * Boots a reference guest image on the real host side and drives its serial console: the
 * emulated platform (8259 pair, COM1, PCI, PIIX4 IDE over raw files) is the partition's intercept
 * handler, served from this thread; typed lines go into COM1's receiver as a terminal would send
 * them. Optionally a VMBus host with StorVsp (raw files as SCSI LUNs) and the four integration
 * services, for the enlightened image.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { HvError } from '../../hypervisor/hv-error.ts';
import { Hypervisor } from '../../hypervisor/hypervisor.ts';
import { PartitionProperty, type Partition } from '../../hypervisor/partition.ts';
import { VmbusHost } from '../../vmbus/host/vmbus-host.ts';
import { RawDisk } from '../../root-partition/storage/raw-disk.ts';
import type { BlockBackend } from '../../root-partition/storage/block-backend.ts';
import { openDisk } from '../../root-partition/storage/open-disk.ts';
import { ScsiDisk } from '../../root-partition/storage/scsi/scsi-disk.ts';
import { IntegrationServices } from '../../root-partition/vsp/ic/integration-services.ts';
import { lunsAtLocations } from '../../root-partition/vsp/storvsp/scsi-controller.ts';
import { StorVsp } from '../../root-partition/vsp/storvsp/storvsp-vsp.ts';
import { NetVsp } from '../../root-partition/vsp/netvsp/netvsp-vsp.ts';
import { EmulatedPlatform } from '../../root-partition/vmwp/emulated-platform.ts';
import { buildGuests, guestImagePath } from '../../scripts/build-guests.ts';

export const PROMPT = 'tsvisor> ';

export interface ShellRigOptions {
  image: 'ref-emulated' | 'ref-enlightened';
  cmdline?: string;
  /** Raw files on IDE (primary master, slave, secondary master, slave). */
  ide?: string[];
  /** Raw files as SCSI LUNs 0, 1, … of one StorVsp controller (starts the VMBus host). */
  scsi?: string[];
  /** Offer heartbeat, shutdown, time sync and KVP (starts the VMBus host). */
  integrationServices?: boolean;
  /** Legacy NICs (NE2000) with these MACs; wire `platform.chipset.nics[i].card` to a switch. */
  nics?: Uint8Array[];
  /** Synthetic NICs (netvsp on VMBus) with these MACs (starts the VMBus host); wire `netVsps[i]` to a switch. */
  syntheticNics?: Uint8Array[];
  /** The synthetic NICs agree jumbo frames when the guest asks (as a VM worker's do). */
  jumbo?: boolean;
  /** The synthetic NICs offer sub-channels (as a VM worker's do), up to this many channels each. */
  nicChannels?: number;
}

export class ShellRig {
  private out = '';
  private readonly waiters: (() => void)[] = [];
  private readonly abort = new AbortController();
  private serving: Promise<void> = Promise.resolve();
  private readonly disks: BlockBackend[] = [];
  readonly errors: HvError[] = [];
  platform!: EmulatedPlatform;
  vmbus: VmbusHost | null = null;
  ic: IntegrationServices | null = null;
  readonly netVsps: NetVsp[] = [];
  /** Frames a synthetic NIC's guest sent go here (set it before the guest sends). */
  onSyntheticTransmit: (nic: number, frame: Uint8Array) => void = () => {};

  private constructor(
    readonly hv: Hypervisor,
    readonly partition: Partition,
  ) {}

  static async boot(o: ShellRigOptions): Promise<ShellRig> {
    await buildGuests([o.image]);
    const hv = new Hypervisor();
    const partition = hv.createPartition({ memoryBytes: 32 << 20, vpCount: 1, waitPolicy: { spinIterations: 0 } });
    const rig = new ShellRig(hv, partition);
    try {
      partition.initialize();
      partition.loadImage(fs.readFileSync(guestImagePath(o.image)), o.cmdline ?? '');
      const ide = (o.ide ?? []).map((f) => rig.open(f));
      rig.platform = new EmulatedPlatform(partition, {
        console: (b) => rig.append(Buffer.from(b).toString('latin1')),
        ide: ide.map((backend) => ({ backend })),
        nics: o.nics?.map((mac) => ({ mac })),
      });
      partition.inbox.handler = rig.platform;
      rig.serving = partition.inbox.serveAsync(rig.abort.signal);
      const log = (e: HvError) => rig.errors.push(e);
      if ((o.scsi?.length ?? 0) > 0 || o.integrationServices || (o.syntheticNics?.length ?? 0) > 0) {
        rig.vmbus = new VmbusHost(partition, { log });
        if (o.scsi?.length) {
          const luns = lunsAtLocations(o.scsi.map((f, i) => new ScsiDisk(rig.open(f), { diskId: Buffer.alloc(16, i + 1) })));
          rig.vmbus.addVsp(new StorVsp({ instanceId: '7c3d3a2e-5b1f-4c11-9d0e-0a0b0c0d0e01', luns }));
        }
        for (const [i, mac] of (o.syntheticNics ?? []).entries()) {
          const host = rig.vmbus;
          const vsp = new NetVsp({
            instanceId: `5a1e0000-0000-4000-8000-0000000000${(i + 1).toString(16).padStart(2, '0')}`,
            mac,
            gpadls: host.server,
            allowJumbo: o.jumbo,
            ...(o.nicChannels ? { subChannels: host.server, maxChannels: o.nicChannels } : {}),
            onTransmit: (frame) => rig.onSyntheticTransmit(i, frame),
          });
          rig.netVsps.push(vsp);
          host.addVsp(vsp);
        }
        if (o.integrationServices) {
          rig.ic = new IntegrationServices({ referenceTime: () => partition.getProperty(PartitionProperty.ReferenceTime).value, log });
          rig.ic.addTo(rig.vmbus);
        }
      }
      partition.start();
    } catch (e) {
      await rig.dispose();
      throw e;
    }
    return rig;
  }

  /** Raw or VHDX by signature, as a VM's worker opens its disks. */
  private open(file: string): BlockBackend {
    const d = openDisk(file);
    this.disks.push(d);
    return d;
  }

  private append(s: string): void {
    this.out += s;
    for (const w of this.waiters.splice(0)) w();
  }

  console(): string {
    return this.out;
  }

  waitFor(test: (out: string) => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}; console so far:\n${this.out}`)), timeoutMs);
      const check = () => {
        if (test(this.out)) {
          clearTimeout(t);
          resolve();
        } else this.waiters.push(check);
      };
      check();
    });
  }

  /** Polls `condition` (host-side state) until it holds. */
  async waitUntil(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; console so far:\n${this.out}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Waits for the first prompt (the guest has attached its devices). */
  ready(): Promise<void> {
    return this.waitFor((o) => o.includes(PROMPT), 'the first prompt');
  }

  /** Types raw bytes into COM1's receiver. */
  type(text: string): void {
    this.platform.com1.receive(Buffer.from(text, 'latin1'));
  }

  /** Types `line` and a CR, and returns what the guest printed before its next prompt. */
  async command(line: string, eol = '\r'): Promise<string> {
    const start = this.out.length;
    this.type(line + eol);
    await this.waitFor((o) => o.indexOf(PROMPT, start) >= 0, `the prompt after "${line}"`);
    return this.out.slice(start, this.out.indexOf(PROMPT, start));
  }

  /** Resolves when every VP has stopped; rejects after `timeoutMs`. */
  async waitForHalt(timeoutMs = 15_000): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`the guest did not halt; console:\n${this.out}`)), timeoutMs);
    });
    try {
      await Promise.race([this.partition.whenIdle(), timeout]);
    } finally {
      clearTimeout(t);
    }
  }

  async dispose(): Promise<void> {
    this.ic?.dispose();
    await this.partition.stop();
    this.abort.abort();
    await this.serving;
    this.vmbus?.dispose();
    await this.hv.shutdown();
    for (const d of this.disks.splice(0)) d.close();
  }
}

/** A zero-filled raw disk of `sectors` sectors in a fresh temporary directory. */
export function tempDisk(sectors: number, name = 'disk.raw'): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsvisor-ref-'));
  const file = path.join(dir, name);
  RawDisk.create(file, { sizeBytes: sectors * 512 }).close();
  return { dir, file };
}

export function readSector(file: string, lba: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(512);
    fs.readSync(fd, b, 0, 512, lba * 512);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

export function writeSector(file: string, lba: number, data: Uint8Array): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, data, 0, data.length, lba * 512);
  } finally {
    fs.closeSync(fd);
  }
}
