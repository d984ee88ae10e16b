/**
 * Builds and owns one VM's root-side devices on the thread that serves its intercepts: the
 * emulated platform (Gen1 chipset, IDE disks) as the intercept handler and, when the VM has
 * synthetic devices, the VMBus host with its VSPs. Everything here runs on one thread: the
 * device models are not thread-safe.
 */
import { resolve } from 'node:path';
import type { ChildPartitionAccess } from '../../hypervisor/partition-handle.ts';
import { P_REQUESTED_STATE, RequestedState } from '../../hypervisor/partition-control.ts';
import { VmbusHost } from '../../vmbus/host/vmbus-host.ts';
import type { UartSink } from '../devices/uart/uart16550.ts';
import type { Vsp } from '../../vmbus/host/vsp.ts';
import { StorageRoots } from '../host/storage-roots.ts';
import { openDisk } from '../storage/open-disk.ts';
import { ScsiDisk } from '../storage/scsi/scsi-disk.ts';
import { EchoVsp } from '../vsp/echo/echo-vsp.ts';
import { lunsAtLocations } from '../vsp/storvsp/scsi-controller.ts';
import { StorVsp } from '../vsp/storvsp/storvsp-vsp.ts';
import type { DiskConfig, NicConfig, VmDeviceConfig } from './device-config.ts';
import { EmulatedPlatform } from './emulated-platform.ts';
import { PostCodePort } from './post-code-port.ts';
import { DiskCopySource, type MovedDiskInfo } from './disk-copy-source.ts';
import { scsiDiskId, SwitchableDisk, switchDisks, type DiskSwitch, type ImageOpener } from './disk-switch.ts';
import { LiveMergeError, mergeLive, type LiveMergeResult } from './live-merge.ts';
import { ancestorIn, mergeInChainLive, mergeIntoBaseLive } from './chain-merge.ts';
import { openVhdx } from '../storage/vhdx/vhdx-open.ts';
import { NetVsp } from '../vsp/netvsp/netvsp-vsp.ts';
import { ETH_JUMBO_MTU, parseMac } from '../vswitch/ethernet.ts';
import { NicUplink } from './nic-uplink.ts';
import type { SwitchedNic } from './nic-switch-port.ts';

export class VmDevices {
  readonly platform: EmulatedPlatform;
  readonly vmbus: VmbusHost | null = null;
  readonly storVsps: StorVsp[] = [];
  private readonly disks: SwitchableDisk[] = [];
  private readonly openImage: ImageOpener;
  /** Opens a drive's parent read-write without a lock, for a live merge into it. */
  private readonly openMergeTarget: (path: string) => ReturnType<typeof openVhdx>;
  /** Refuses a path outside the storage roots (files a merge re-points are held to them as images are). */
  private readonly checkImagePath: (path: string) => void;
  /** Live merges under way; closing the devices stops them. */
  private readonly merging = new Set<SwitchableDisk>();
  private closed = false;
  readonly netVsps: NetVsp[] = [];
  /** One per NIC connected to a switch, in definition order of those NICs. */
  readonly uplinks: NicUplink[] = [];

  /**
   * Opens every disk first: a bad path or size, or an image another VM (or any process) has
   * locked, fails here, before the VM runs. The locks live on the disks' descriptors, in this
   * process: close() releases them, and so does the death of the worker.
   */
  constructor(
    partition: ChildPartitionAccess,
    config: VmDeviceConfig,
    console?: UartSink,
    log: (message: string) => void = () => {},
    onPostCode?: (code: number) => void,
    /** The operator's own VSPs, loaded already (user-vsp-loader.ts: loading is asynchronous). */
    userVsps: readonly Vsp[] = [],
    /** A drive's first failure (its file's I/O error, a damaged VHDX), once per drive. */
    onDiskFailure?: (path: string, error: Error) => void,
  ) {
    // One image attached twice to this VM (say as IDE and as SCSI) is one open disk: one lock,
    // one file offset space, writes seen by both paths at once. Only with the same access: a
    // read-only and a read-write attachment of one image conflict like two VMs would.
    const roots = config.storageRoots ? StorageRoots.of(config.storageRoots) : null;
    const opened = new Map<string, SwitchableDisk>();
    this.openImage = (path, readOnly) => {
      roots?.check(path, 'disk image');
      // Raw or VHDX by signature (other formats refused); a differencing disk's parents are
      // held to the same storage roots as the disk itself.
      return openDisk(path, {
        readOnly,
        log,
        ...(roots
          ? {
              checkOpened: (fd: number, p: string) => roots.checkOpened(fd, p, 'disk image'),
              checkPath: (p: string) => roots.check(p, 'disk image'),
            }
          : {}),
      });
    };
    this.checkImagePath = (path) => roots?.check(path, 'disk image');
    this.openMergeTarget = (path) => {
      roots?.check(path, 'disk image');
      return openVhdx(path, {
        lock: false,
        log,
        ...(roots
          ? {
              checkOpened: (fd: number, p: string) => roots.checkOpened(fd, p, 'disk image'),
              checkPath: (p: string) => roots.check(p, 'disk image'),
            }
          : {}),
      });
    };
    const open = (d: DiskConfig): SwitchableDisk => {
      const key = `${d.readOnly ? 'ro' : 'rw'}:${resolve(d.path)}`;
      const known = opened.get(key);
      if (known) return known;
      // Switchable: a checkpoint moves the drive to a differencing child while the VM runs.
      const disk: SwitchableDisk = new SwitchableDisk(this.openImage(d.path, d.readOnly ?? false), d.path, (e) => onDiskFailure?.(disk.path, e));
      this.disks.push(disk);
      opened.set(key, disk);
      return disk;
    };
    try {
      const ide = (config.ide ?? []).slice(0, 4).map((d) => (d ? { backend: open(d) } : undefined));
      const scsi = (config.scsi ?? []).map((c) => ({
        c,
        disks: c.disks.map((d) => {
          const disk = open(d);
          return new ScsiDisk(disk, { diskId: scsiDiskId(d, disk) });
        }),
      }));
      const nics = config.nics ?? [];
      const legacy = nics.filter((n) => n.kind === 'emulated');
      this.platform = new EmulatedPlatform(partition, { console, ide, nics: legacy.map((n) => ({ mac: parseMac(n.mac) })) });
      partition.inbox.handler = this.platform;
      if (config.postCodes && onPostCode) this.platform.bus.register(new PostCodePort(onPostCode));
      const synthetic = nics.filter((n) => n.kind === 'synthetic');
      if (scsi.length > 0 || config.echo || config.vmbus || config.integrationServices || synthetic.length > 0 || userVsps.length > 0) {
        const host = new VmbusHost(partition, { log: (e) => log(`vmbus ${e.code}: ${e.message}`) });
        this.vmbus = host;
        for (const { c, disks } of scsi) {
          const vsp = new StorVsp({
            instanceId: c.instanceId,
            luns: lunsAtLocations(disks).map((l, i) => ({ ...l, lun: c.disks[i].location ?? l.lun })),
            subChannels: host.server,
            maxSubChannels: c.maxSubChannels ?? 0,
            pollSpinMicros: c.pollSpinMicros,
            ...(c.queueMinBytes !== undefined ? { queueMinBytes: c.queueMinBytes ?? Infinity } : {}),
            ...(c.subChannelThreads ? { subChannelThreads: c.subChannelThreads } : {}),
            log,
          });
          this.storVsps.push(vsp);
          host.addVsp(vsp);
        }
        if (config.echo) host.addVsp(new EchoVsp());
        for (const n of synthetic) {
          const uplink: { to?: NicUplink } = {};
          const vsp = new NetVsp({
            // Jumbo frames when the guest asks (NDIS config): its switch port carries them (MTU 9000).
            instanceId: n.instanceId!,
            mac: parseMac(n.mac),
            gpadls: host.server,
            log,
            allowJumbo: true,
            // Sub-channels (vRSS) for a guest that asks: up to maxChannels, never more than the host's cores.
            subChannels: host.server,
            maxChannels: n.maxChannels,
            onTransmit: (frame) => uplink.to?.transmit(frame),
            paused: () => Atomics.load(partition.ctl.i32, P_REQUESTED_STATE >> 2) === RequestedState.Pause,
          });
          this.netVsps.push(vsp);
          host.addVsp(vsp);
          if (n.switchSocket) uplink.to = this.connect({ kind: 'synthetic', vsp }, n, log);
          else vsp.setLink(false);
        }
        for (const vsp of userVsps) host.addVsp(vsp);
      }
      legacy.forEach((n, i) => {
        if (n.switchSocket) this.connect({ kind: 'emulated', card: this.platform.chipset.nics[i]!.card }, n, log);
      });
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Resolves once no storvsp request is in flight (every completion written): before a save, a switch, a merge or a move's copy. */
  storageIdle(): Promise<void> {
    return Promise.all(this.storVsps.map((v) => v.whenIdle())).then(() => {});
  }

  /**
   * Parks every storvsp queue thread until releaseStorageThreads(): the sub-channels are served on
   * this thread meanwhile, so a drive switch, a merge or a storage move sees every write.
   */
  holdStorageThreads(): void {
    for (const v of this.storVsps) v.holdQueueThreads();
  }

  releaseStorageThreads(): void {
    for (const v of this.storVsps) v.releaseQueueThreads();
  }

  /** Ends every storvsp queue thread (before the disks close: the threads borrow their descriptors). */
  stopStorageThreads(): Promise<void> {
    return Promise.all(this.storVsps.map((v) => v.stopQueueThreads())).then(() => {});
  }

  /** storvsp requests in flight now, over every controller. */
  get storageInFlight(): number {
    let n = 0;
    for (const v of this.storVsps) n += v.inFlight;
    return n;
  }

  /** A storage move's dirty-block tracking and reads of the drives (disk-copy-source.ts). */
  readonly storageMove = new DiskCopySource();

  /** Starts a storage move: every drive, in the order they were opened (IDE, then SCSI). */
  beginStorageMove(): MovedDiskInfo[] {
    return this.storageMove.begin(this.disks);
  }

  /** Moves drives to other images (a checkpoint's differencing children); only while the VPs are parked. */
  switchDisks(switches: readonly DiskSwitch[]): void {
    if (this.merging.size) throw new LiveMergeError('VMWP_ERR_MERGE_BUSY', 'a disk merge is under way; drives are switched once it ends');
    switchDisks(this.disks, switches, this.openImage);
  }

  /**
   * Merges the writable drive on `child` into `parent` while the VM runs (live-merge.ts): the
   * guest's I/O is served between the merge's steps, and the drive ends on `parent`. A `child`
   * deeper in a drive's chain is merged there (chain-merge.ts): `parent` takes its name, or, given
   * `repoint` (the files built on `child`), keeps its own and those files are pointed at it.
   */
  async mergeDisk(child: string, parent: string, repoint: readonly string[] = []): Promise<LiveMergeResult> {
    const own = this.disks.find((d) => resolve(d.path) === resolve(child) && !d.readOnly);
    const disk = own ?? this.disks.find((d) => !d.readOnly && ancestorIn(d, child) !== null);
    if (!disk) throw new LiveMergeError('VMWP_ERR_MERGE_NO_DRIVE', `no writable drive of this VM uses ${child}`);
    if (this.merging.has(disk)) throw new LiveMergeError('VMWP_ERR_MERGE_BUSY', `a merge on ${disk.path} is already under way`);
    for (const p of repoint) this.checkImagePath(p);
    const target = this.openMergeTarget(parent);
    this.merging.add(disk);
    try {
      const o = { cancelled: () => this.closed };
      if (own) return await mergeLive(disk, target, this.openImage, o);
      if (repoint.length) return await mergeIntoBaseLive(disk, child, target, repoint, this.openImage, o);
      return await mergeInChainLive(disk, child, target, this.openImage, o);
    } finally {
      this.merging.delete(disk);
    }
  }

  private connect(nic: SwitchedNic, n: NicConfig, log: (message: string) => void): NicUplink {
    const uplink = new NicUplink(
      nic,
      n.switchSocket!,
      {
        kind: n.kind,
        mac: n.mac,
        ...(n.name ? { name: n.name } : {}),
        ...(n.vlanId ? { vlanId: n.vlanId } : {}),
        ...(n.kind === 'synthetic' ? { mtu: ETH_JUMBO_MTU } : {}),
      },
      log,
    );
    this.uplinks.push(uplink);
    return uplink;
  }

  close(): void {
    this.closed = true;
    for (const u of this.uplinks.splice(0)) u.close();
    this.vmbus?.dispose();
    this.storageMove.end();
    for (const d of this.disks.splice(0)) d.close();
  }
}
