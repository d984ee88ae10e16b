/**
 * The VMBus side of an x86 VM, on its VP thread: the x86 partition (SynIC, hypercalls), our VMBus
 * server with the integration services and, given disk images, a synthetic SCSI controller, and
 * given synthetic NICs, netvsp with each NIC's switch port (its socket served on this thread).
 * Guest RAM is v86's own memory, which only this thread sees, so all of it runs here, between
 * v86's slices: a guest HvPostMessage/HvSignalEvent queues a microtask that serves the inbox once
 * the slice returns, and a timer looks again for what waits (answers held back, retries).
 */
import { createHash } from 'node:crypto';
import { V86LocalApic } from '../../hypervisor/x86/v86-local-apic.ts';
import { X86Partition } from '../../hypervisor/x86/x86-partition.ts';
import type { X86Vp } from '../../hypervisor/x86/x86-vp.ts';
import { VmbusHost } from '../../vmbus/host/vmbus-host.ts';
import { StorageRoots } from '../host/storage-roots.ts';
import type { BlockBackend } from '../storage/block-backend.ts';
import { openDisk } from '../storage/open-disk.ts';
import { ScsiDisk } from '../storage/scsi/scsi-disk.ts';
import { IntegrationServices } from '../vsp/ic/integration-services.ts';
import { lunsAtLocations } from '../vsp/storvsp/scsi-controller.ts';
import { StorVsp } from '../vsp/storvsp/storvsp-vsp.ts';
import type { DiskConfig, IntegrationServicesConfig, NicConfig } from '../vmwp/device-config.ts';
import { NicUplink } from '../vmwp/nic-uplink.ts';
import { NetVsp } from '../vsp/netvsp/netvsp-vsp.ts';
import { ETH_JUMBO_MTU, parseMac } from '../vswitch/ethernet.ts';
import type { X86VmbusStatus } from './x86-vm-messages.ts';

/** Instance GUID of the x86 VM's SCSI controller. */
const SCSI_INSTANCE = '5e3b2a10-4c6d-4f8e-9a1b-2c3d4e5f6a7b';

/** How often the VMBus side looks at the guest's ports without being told (host messages held back, retries). */
const VMBUS_POLL_MS = 10;

/** What a VMMS-managed x86 VM adds: its disks confined to the storage roots, and the integration services its definition enables. */
export interface X86VmbusOptions {
  storageRoots?: readonly string[];
  /** Absent: all four are offered. */
  integrationServices?: IntegrationServicesConfig;
  /** Synthetic network adapters (netvsp), each on its switch when it names one (legacy ones are not for this VP kind). */
  nics?: readonly NicConfig[];
}

/** The SynIC partition, VMBus server, integration services and storvsp of one x86 VM. */
export class X86Vmbus {
  readonly partition: X86Partition;
  readonly host: VmbusHost;
  readonly ic: IntegrationServices;
  private readonly poll: NodeJS.Timeout;
  private pumpQueued = false;
  private failed = false;
  private readonly disks: BlockBackend[] = [];
  private readonly uplinks: NicUplink[] = [];

  constructor(
    private readonly vp: X86Vp,
    scsi: readonly (string | DiskConfig)[],
    private readonly fail: (message: string) => void,
    log: (message: string) => void,
    opts: X86VmbusOptions = {},
  ) {
    const ram = vp.ramWindow;
    this.partition = new X86Partition({
      name: 'linux',
      memory: ram.memory,
      ramOffset: ram.offset,
      ramBytes: ram.bytes,
      apic: new V86LocalApic(vp.cpu),
      onRootWork: () => this.schedulePump(),
      onFault: (msr, write) => log(`SynIC MSR 0x${msr.toString(16)} ${write ? 'write' : 'read'} takes #GP on Hyper-V; dropped`),
    });
    this.host = new VmbusHost(this.partition, { log: (e) => log(`vmbus ${e.code}: ${e.message}`) });
    try {
      const roots = opts.storageRoots ? StorageRoots.of([...opts.storageRoots]) : null;
      for (const f of scsi) {
        const d: DiskConfig = typeof f === 'string' ? { path: f } : f;
        roots?.check(d.path, 'disk image');
        this.disks.push(
          openDisk(d.path, {
            log,
            ...(d.readOnly ? { readOnly: true } : {}),
            ...(roots
              ? { checkOpened: (fd: number, p: string) => roots.checkOpened(fd, p, 'disk image'), checkPath: (p: string) => roots.check(p, 'disk image') }
              : {}),
          }),
        );
      }
    } catch (e) {
      for (const d of this.disks) d.close();
      this.host.dispose();
      throw e;
    }
    if (this.disks.length > 0) {
      // storvsp serves each request inside the drain, with synchronous I/O on this thread.
      const paths = scsi.map((f) => (typeof f === 'string' ? f : f.path));
      const luns = this.disks.map((d, i) => new ScsiDisk(d, { diskId: createHash('sha256').update(paths[i]!).digest().subarray(0, 16) }));
      // A definition's disks sit at their controller locations (LUN = location); given as paths, in order.
      const at = scsi.map((f, i) => (typeof f === 'string' ? i : (f.location ?? i)));
      this.host.addVsp(new StorVsp({ instanceId: SCSI_INSTANCE, luns: lunsAtLocations(luns).map((l, i) => ({ ...l, lun: at[i]! })) }));
    }
    // Each synthetic NIC's frames cross to its switch on this thread's event loop, so between v86's slices too.
    for (const n of opts.nics ?? []) {
      if (n.kind !== 'synthetic' || !n.instanceId) continue;
      const uplink: { to?: NicUplink } = {};
      const vsp = new NetVsp({
        instanceId: n.instanceId,
        mac: parseMac(n.mac),
        gpadls: this.host.server,
        log,
        allowJumbo: true,
        onTransmit: (frame) => uplink.to?.transmit(frame),
      });
      this.host.addVsp(vsp);
      if (n.switchSocket) {
        uplink.to = new NicUplink(
          { kind: 'synthetic', vsp },
          n.switchSocket,
          { kind: 'synthetic', mac: n.mac, mtu: ETH_JUMBO_MTU, ...(n.name ? { name: n.name } : {}), ...(n.vlanId ? { vlanId: n.vlanId } : {}) },
          log,
        );
        this.uplinks.push(uplink.to);
      } else vsp.setLink(false);
    }
    this.ic = new IntegrationServices({ referenceTime: () => BigInt(this.partition.referenceTime()), log: (e) => log(`ic ${e.code}: ${e.message}`) });
    if (opts.integrationServices) {
      const c = opts.integrationServices;
      // Only the services the definition enables are offered; the others never reach the guest.
      for (const [on, vsp] of [
        [c.heartbeat, this.ic.heartbeat],
        [c.shutdown, this.ic.shutdown],
        [c.timeSync, this.ic.timeSync],
        [c.kvp, this.ic.kvp],
      ] as const)
        if (on) this.host.addVsp(vsp);
    } else this.ic.addTo(this.host);
    this.poll = setInterval(() => this.pump(), VMBUS_POLL_MS);
  }

  /** Serves the guest's messages and signals after v86's current slice (a microtask runs once it returns). */
  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => this.pump());
  }

  /** Serves the root's inbox now (between v86's slices only). */
  pump(): void {
    this.pumpQueued = false;
    if (this.failed) return;
    // Growing v86's non-shared memory would have detached every view of guest RAM (rings included).
    if (this.vp.memoryGrew) {
      this.failed = true;
      clearInterval(this.poll);
      this.fail("v86's Wasm memory grew past the heap reserved for it: guest RAM views are gone, the VMBus stopped");
      return;
    }
    this.partition.pump();
  }

  status(): X86VmbusStatus {
    const v = this.host.server.negotiatedVersion;
    const c = this.partition.counters;
    return {
      version: v === 0 ? '' : `${v >>> 16}.${v & 0xffff}`,
      messagesFromGuest: this.host.stats.messagesFromGuest,
      channelsOpened: this.host.stats.channelsOpened,
      protocolErrors: this.host.stats.protocolErrors,
      heartbeat: this.ic.heartbeatStatus(),
      postMessageCalls: c.postMessage,
      signalEventCalls: c.signalEvent,
      vectorsRaised: c.vectorsRaised,
    };
  }

  dispose(): void {
    clearInterval(this.poll);
    this.partition.dispose();
    for (const u of this.uplinks.splice(0)) u.close();
    this.ic.dispose();
    // After a growth the rings are detached: closing the channels would touch them. The VM is ending.
    if (!this.failed) this.host.dispose();
    for (const d of this.disks.splice(0)) d.close();
  }
}
