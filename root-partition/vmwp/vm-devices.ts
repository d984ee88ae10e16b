/**
 * Builds and owns one VM's root-side devices on the thread that serves its intercepts: the
 * emulated platform (Gen1 chipset, IDE disks) as the intercept handler and, when the VM has
 * synthetic devices, the VMBus host with its VSPs. Everything here runs on one thread: the
 * device models are not thread-safe.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import type { ChildPartitionAccess } from '../../hypervisor/partition-handle.ts';
import { VmbusHost } from '../../vmbus/host/vmbus-host.ts';
import type { UartSink } from '../devices/uart/uart16550.ts';
import { StorageRoots } from '../vmms/storage-roots.ts';
import type { BlockBackend } from '../storage/block-backend.ts';
import { openDisk } from '../storage/open-disk.ts';
import { ScsiDisk } from '../storage/scsi/scsi-disk.ts';
import { EchoVsp } from '../vsp/echo/echo-vsp.ts';
import { lunsAtLocations } from '../vsp/storvsp/scsi-controller.ts';
import { StorVsp } from '../vsp/storvsp/storvsp-vsp.ts';
import type { DiskConfig, NicConfig, VmDeviceConfig } from './device-config.ts';
import { EmulatedPlatform } from './emulated-platform.ts';
import { PostCodePort } from './post-code-port.ts';
import { NetVsp } from '../vsp/netvsp/netvsp-vsp.ts';
import { parseMac } from '../vswitch/ethernet.ts';
import { NicUplink } from './nic-uplink.ts';
import type { SwitchedNic } from './nic-switch-port.ts';

function diskId(d: DiskConfig): Uint8Array {
  if (d.diskId && /^[0-9a-f]{32}$/i.test(d.diskId)) return Buffer.from(d.diskId, 'hex');
  return createHash('sha256').update(d.path).digest().subarray(0, 16);
}

export class VmDevices {
  readonly platform: EmulatedPlatform;
  readonly vmbus: VmbusHost | null = null;
  readonly storVsps: StorVsp[] = [];
  readonly netVsps: NetVsp[] = [];
  /** One per NIC connected to a switch, in definition order of those NICs. */
  readonly uplinks: NicUplink[] = [];
  private readonly disks: BlockBackend[] = [];

  /**
   * Opens every disk first: a bad path or size, or an image another VM (or any process) has
   * locked, fails here, before the VM runs. The locks live on the disks' descriptors, in this
   * process: close() releases them, and so does the death of the worker.
   */
  constructor(
    partition: ChildPartitionAccess, config: VmDeviceConfig, console?: UartSink, log: (message: string) => void = () => {},
    onPostCode?: (code: number) => void,
  ) {
    // One image attached twice to this VM (say as IDE and as SCSI) is one open disk: one lock,
    // one file offset space, writes seen by both paths at once. Only with the same access: a
    // read-only and a read-write attachment of one image conflict like two VMs would.
    const roots = config.storageRoots ? StorageRoots.of(config.storageRoots) : null;
    const opened = new Map<string, BlockBackend>();
    const open = (d: DiskConfig) => {
      const key = `${d.readOnly ? 'ro' : 'rw'}:${resolve(d.path)}`;
      const known = opened.get(key);
      if (known) return known;
      roots?.check(d.path, 'disk image');
      // Raw or VHDX by signature (other formats refused); a differencing disk's parents are
      // held to the same storage roots as the disk itself.
      const disk = openDisk(d.path, {
        readOnly: d.readOnly, log,
        ...(roots ? {
          checkOpened: (fd: number, path: string) => roots.checkOpened(fd, path, 'disk image'),
          checkPath: (path: string) => roots.check(path, 'disk image'),
        } : {}),
      });
      this.disks.push(disk);
      opened.set(key, disk);
      return disk;
    };
    try {
      const ide = (config.ide ?? []).slice(0, 4).map((d) => (d ? { backend: open(d) } : undefined));
      const scsi = (config.scsi ?? []).map((c) => ({ c, disks: c.disks.map((d) => new ScsiDisk(open(d), { diskId: diskId(d) })) }));
      const nics = config.nics ?? [];
      const legacy = nics.filter((n) => n.kind === 'emulated');
      this.platform = new EmulatedPlatform(partition, { console, ide, nics: legacy.map((n) => ({ mac: parseMac(n.mac) })) });
      partition.inbox.handler = this.platform;
      if (config.postCodes && onPostCode) this.platform.bus.register(new PostCodePort(onPostCode));
      const synthetic = nics.filter((n) => n.kind === 'synthetic');
      if (scsi.length > 0 || config.echo || config.vmbus || config.integrationServices || synthetic.length > 0) {
        const host = new VmbusHost(partition, { log: (e) => log(`vmbus ${e.code}: ${e.message}`) });
        this.vmbus = host;
        for (const { c, disks } of scsi) {
          const vsp = new StorVsp({
            instanceId: c.instanceId, luns: lunsAtLocations(disks).map((l, i) => ({ ...l, lun: c.disks[i].location ?? l.lun })), subChannels: host.server,
            maxSubChannels: c.maxSubChannels ?? 0, pollSpinMicros: c.pollSpinMicros, log,
          });
          this.storVsps.push(vsp);
          host.addVsp(vsp);
        }
        if (config.echo) host.addVsp(new EchoVsp());
        for (const n of synthetic) {
          const uplink: { to?: NicUplink } = {};
          const vsp = new NetVsp({
            instanceId: n.instanceId!, mac: parseMac(n.mac), gpadls: host.server, log,
            onTransmit: (frame) => uplink.to?.transmit(frame),
          });
          this.netVsps.push(vsp);
          host.addVsp(vsp);
          if (n.switchSocket) uplink.to = this.connect({ kind: 'synthetic', vsp }, n, log);
          else vsp.setLink(false);
        }
      }
      legacy.forEach((n, i) => {
        if (n.switchSocket) this.connect({ kind: 'emulated', card: this.platform.chipset.nics[i]!.card }, n, log);
      });
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private connect(nic: SwitchedNic, n: NicConfig, log: (message: string) => void): NicUplink {
    const uplink = new NicUplink(nic, n.switchSocket!, { kind: n.kind, mac: n.mac, ...(n.name ? { name: n.name } : {}), ...(n.vlanId ? { vlanId: n.vlanId } : {}) }, log);
    this.uplinks.push(uplink);
    return uplink;
  }

  close(): void {
    for (const u of this.uplinks.splice(0)) u.close();
    this.vmbus?.dispose();
    for (const d of this.disks.splice(0)) d.close();
  }
}
