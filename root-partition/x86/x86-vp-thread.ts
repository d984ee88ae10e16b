/**
 * An x86 VM's VP thread: v86 runs the processor here, and the devices the root partition
 * provides for this VP kind sit on the same thread behind the VP's port map, so a port access is a
 * function call, as an exit handled in the hypervisor's own context would be. Today that is COM1,
 * our 16550, on IRQ 4 of v86's interrupt controllers, and the hypercall trap port; with the
 * enlightenments also the SynIC, the VMBus ACPI device (an SSDT for SeaBIOS) and our VMBus server
 * with the integration services. The VMBus server runs here too, between v86's slices: guest RAM
 * is v86's own memory, which only this thread sees.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { preparedV86 } from '../../hypervisor/x86/prepared-v86.ts';
import { V86LocalApic } from '../../hypervisor/x86/v86-local-apic.ts';
import { X86Enlightenments } from '../../hypervisor/x86/x86-enlightenments.ts';
import { X86Partition } from '../../hypervisor/x86/x86-partition.ts';
import { X86Vp } from '../../hypervisor/x86/x86-vp.ts';
import { VmbusHost } from '../../vmbus/host/vmbus-host.ts';
import { Uart16550 } from '../devices/uart/uart16550.ts';
import type { BlockBackend } from '../storage/block-backend.ts';
import { openDisk } from '../storage/open-disk.ts';
import { ScsiDisk } from '../storage/scsi/scsi-disk.ts';
import { IntegrationServices } from '../vsp/ic/integration-services.ts';
import { lunsAtLocations } from '../vsp/storvsp/scsi-controller.ts';
import { StorVsp } from '../vsp/storvsp/storvsp-vsp.ts';
import { VMBUS_SSDT_FILE, vmbusSsdt } from './vmbus-ssdt.ts';
import type { FromX86Vp, ToX86Vp, X86VmbusStatus, X86VmThreadData, X86VpStatus } from './x86-vm-messages.ts';

const COM1_BASE = 0x3f8;
const COM1_IRQ = 4;
/**
 * PM1a_CNT of v86's PIIX4 power management (PM base 0xB000 in SeaBIOS's FADT): SLP_EN (bit 13)
 * with SLP_TYP (12:10) 0, the \\_S5 value of SeaBIOS's DSDT, is the guest powering off (ACPI 6.4 §4.8.3.2.1).
 */
const PM1A_CNT = 0xb004;
const SLP_EN = 1 << 13;

const data = workerData as X86VmThreadData;
const port = parentPort!;
const post = (m: FromX86Vp, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

/** Console bytes are gathered for one turn of v86's run loop, then posted as one message. */
class ConsoleBatch {
  private chunks: Uint8Array[] = [];
  private scheduled = false;

  add(bytes: Uint8Array): void {
    this.chunks.push(bytes.slice());
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.chunks.length === 0) return;
    const out = Buffer.concat(this.chunks);
    this.chunks = [];
    const bytes = new Uint8Array(out);
    post({ type: 'console', bytes }, [bytes.buffer as ArrayBuffer]);
  }
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** Instance GUID of the x86 VM's SCSI controller. */
const SCSI_INSTANCE = '5e3b2a10-4c6d-4f8e-9a1b-2c3d4e5f6a7b';

/** How often the VMBus side looks at the guest's ports without being told (host messages held back, retries). */
const VMBUS_POLL_MS = 10;

/** The SynIC partition, VMBus server and integration services of one x86 VM, all on this thread. */
class X86Vmbus {
  readonly partition: X86Partition;
  readonly host: VmbusHost;
  readonly ic: IntegrationServices;
  private readonly poll: NodeJS.Timeout;
  private pumpQueued = false;
  private failed = false;
  private readonly disks: BlockBackend[] = [];

  constructor(private readonly vp: X86Vp, scsi: readonly string[], private readonly fail: (message: string) => void, log: (message: string) => void) {
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
      for (const f of scsi) this.disks.push(openDisk(f, { log }));
    } catch (e) {
      for (const d of this.disks) d.close();
      this.host.dispose();
      throw e;
    }
    if (this.disks.length > 0) {
      // storvsp serves each request inside the drain, with synchronous I/O on this thread.
      const luns = this.disks.map((d, i) => new ScsiDisk(d, { diskId: createHash('sha256').update(scsi[i]!).digest().subarray(0, 16) }));
      this.host.addVsp(new StorVsp({ instanceId: SCSI_INSTANCE, luns: lunsAtLocations(luns) }));
    }
    this.ic = new IntegrationServices({ referenceTime: () => BigInt(this.partition.referenceTime()), log: (e) => log(`ic ${e.code}: ${e.message}`) });
    this.ic.addTo(this.host);
    this.poll = setInterval(() => this.pump(), VMBUS_POLL_MS);
  }

  /** Serves the guest's messages and signals after v86's current slice (a microtask runs once it returns). */
  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => this.pump());
  }

  private pump(): void {
    this.pumpQueued = false;
    if (this.failed) return;
    // Growing v86's non-shared memory would have detached every view of guest RAM (rings included).
    if (this.vp.memoryGrew) {
      this.failed = true;
      this.dispose();
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
    this.ic.dispose();
    this.host.dispose();
    for (const d of this.disks.splice(0)) d.close();
  }
}

function status(vp: X86Vp, hv: X86Enlightenments | undefined, vmbus: X86Vmbus | undefined): X86VpStatus {
  let page = '';
  if (hv && (hv.hypercallMsr & 1n) !== 0n) {
    const gpa = Number(hv.hypercallMsr >> 12n) * 4096;
    page = Buffer.from(vp.guestMemory.subarray(gpa, gpa + 8)).toString('hex');
  }
  return {
    instructions: vp.instructions,
    hostPortAccesses: vp.ports.counters.hostPortAccesses,
    enlightened: hv !== undefined,
    cpuid: hv?.counters.cpuid ?? 0,
    rdmsr: hv?.counters.rdmsr ?? 0,
    wrmsr: hv?.counters.wrmsr ?? 0,
    hypercalls: hv?.counters.hypercalls ?? 0,
    guestOsId: hex(hv?.guestOsId ?? 0n),
    hypercallMsr: hex(hv?.hypercallMsr ?? 0n),
    hypercallPage: page,
    ...(vmbus ? { vmbus: vmbus.status() } : {}),
  };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  let hv: X86Enlightenments | undefined;
  const prepared = data.enlightened ? (await preparedV86()).module : undefined;
  const vp = await X86Vp.create({
    memoryBytes: data.memoryBytes,
    bios: readFileSync(data.bios),
    ...(data.vgaBios ? { vgaBios: readFileSync(data.vgaBios) } : {}),
    kernel: readFileSync(data.kernel),
    ...(data.initrd ? { initrd: readFileSync(data.initrd) } : {}),
    cmdline: data.cmdline,
    ...(prepared
      ? {
          wasm: prepared,
          imports: (self) => {
            hv = new X86Enlightenments(self, { referenceTime: () => (performance.now() - t0) * 1e4 });
            return hv.imports();
          },
        }
      : {}),
  });
  const consoleOut = new ConsoleBatch();
  const com1 = new Uart16550({
    name: 'com1',
    base: COM1_BASE,
    irq: { set: (level) => (level ? vp.cpu.device_raise_irq(COM1_IRQ) : vp.cpu.device_lower_irq(COM1_IRQ)) },
    sink: (bytes) => consoleOut.add(bytes),
  });
  vp.ports.attach(com1);
  let stopping = false;
  let vmbus: X86Vmbus | undefined;
  const stop = (reason: 'stop' | 'poweroff') => {
    if (stopping) return;
    stopping = true;
    const last = status(vp, hv, vmbus);
    vmbus?.dispose();
    void vp.destroy().then(() => {
      consoleOut.flush();
      post({ type: 'stopped', reason, status: last });
      port.close();
    });
  };
  if (hv && data.vmbus !== false) {
    vmbus = new X86Vmbus(
      vp,
      data.scsi ?? [],
      (message) => {
        post({ type: 'error', message });
        stop('stop');
      },
      (message) => post({ type: 'log', message }),
    );
    vp.addFirmwareFile(VMBUS_SSDT_FILE, vmbusSsdt());
  }
  hv?.attach(vmbus?.partition);
  vp.ports.tapWrite(PM1A_CNT, 2, (v) => {
    if ((v & SLP_EN) !== 0 && ((v >> 10) & 7) === 0) stop('poweroff');
  });
  port.on('message', (m: ToX86Vp) => {
    if (m.type === 'input') com1.receive(m.bytes);
    else if (m.type === 'status') post({ type: 'status', status: status(vp, hv, vmbus) });
    else if (m.type === 'stop') stop('stop');
    else if (m.type === 'shutdown') {
      if (!vmbus) post({ type: 'shutdown-result', outcome: 'unavailable' });
      else void vmbus.ic.initiateShutdown({ timeoutMs: m.timeoutMs, reason: 'tsvisor' }).then((r) => post({ type: 'shutdown-result', outcome: r.outcome }));
    }
  });
  vp.start();
  post({ type: 'started' });
}

main().catch((e: Error) => {
  post({ type: 'error', message: e.stack ?? e.message });
  port.close();
  // Ends this thread even if v86 left a timer behind (the owner sees the exit and ends the VM).
  process.exit(1);
});
