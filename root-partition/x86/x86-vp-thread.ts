/**
 * An x86 VM's VP thread: v86 runs the processor here, and the devices the root partition
 * provides for this VP kind sit on the same thread behind the VP's port map, so a port access is a
 * function call, as an exit handled in the hypervisor's own context would be. Today that is COM1,
 * our 16550, on IRQ 4 of v86's interrupt controllers, the hypercall trap port, and our PCI bus with
 * the PIIX4 IDE controller (x86-ide.ts; its disks given by the owner); with the
 * enlightenments also the SynIC, the VMBus ACPI device (an SSDT for SeaBIOS) and our VMBus server
 * with the integration services. The VMBus server runs here too, between v86's slices: guest RAM
 * is v86's own memory, which only this thread sees.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { preparedV86 } from '../../hypervisor/x86/prepared-v86.ts';
import { X86Enlightenments } from '../../hypervisor/x86/x86-enlightenments.ts';
import { X86Vp } from '../../hypervisor/x86/x86-vp.ts';
import { Uart16550 } from '../devices/uart/uart16550.ts';
import { VMBUS_SSDT_FILE, vmbusSsdt } from './vmbus-ssdt.ts';
import { X86IcRequests } from './x86-ic-requests.ts';
import type { FromX86Vp, ToX86Vp, X86VmThreadData, X86VpStatus } from './x86-vm-messages.ts';
import { X86Ide } from './x86-ide.ts';
import { X86Vmbus } from './x86-vmbus.ts';

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

function status(vp: X86Vp, hv: X86Enlightenments | undefined, vmbus: X86Vmbus | undefined, ide?: X86Ide): X86VpStatus {
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
    ...(ide ? { ide: ide.status() } : {}),
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
  const ide = new X86Ide(vp, data.ide ?? [], (message) => post({ type: 'log', message }));
  let stopping = false;
  let vmbus: X86Vmbus | undefined;
  let icRequests: X86IcRequests | undefined;
  const stop = (reason: 'stop' | 'poweroff') => {
    if (stopping) return;
    stopping = true;
    // The power-off tap runs inside the guest's OUT: the rest waits until v86's slice returns.
    queueMicrotask(() => {
      // What the guest sent before it stopped (e.g. its answer to a shutdown request) is served first.
      vmbus?.pump();
      const last = status(vp, hv, vmbus, ide);
      icRequests?.dispose();
      vmbus?.dispose();
      ide.close();
      void vp.destroy().then(() => {
        consoleOut.flush();
        post({ type: 'stopped', reason, status: last });
        port.close();
      });
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
      {
        ...(data.storageRoots ? { storageRoots: data.storageRoots } : {}),
        ...(data.integrationServices ? { integrationServices: data.integrationServices } : {}),
        ...(data.nics ? { nics: data.nics } : {}),
      },
    );
    icRequests = new X86IcRequests(
      vmbus.ic,
      data.integrationServices ?? { heartbeat: true, shutdown: true, timeSync: true, kvp: true },
      data.reportIntegration ? { heartbeat: (s) => post({ type: 'heartbeat', status: s }), kvp: (items) => post({ type: 'kvp', items }) } : undefined,
    );
    vp.addFirmwareFile(VMBUS_SSDT_FILE, vmbusSsdt());
  }
  hv?.attach(vmbus?.partition);
  vp.ports.tapWrite(PM1A_CNT, 2, (v) => {
    if ((v & SLP_EN) !== 0 && ((v >> 10) & 7) === 0) stop('poweroff');
  });
  port.on('message', (m: ToX86Vp) => {
    if (m.type === 'input') com1.receive(m.bytes);
    else if (m.type === 'status') post({ type: 'status', status: status(vp, hv, vmbus, ide) });
    else if (m.type === 'stop') stop('stop');
    else if (m.type === 'shutdown') {
      if (!vmbus) post({ type: 'shutdown-result', outcome: 'unavailable' });
      else void vmbus.ic.initiateShutdown({ timeoutMs: m.timeoutMs, reason: 'tsvisor' }).then((r) => post({ type: 'shutdown-result', outcome: r.outcome }));
    } else if (m.type === 'ic') {
      const id = m.id;
      if (!icRequests || stopping) post({ type: 'ic-reply', id, reply: { ok: false, code: 'VMWP_ERR_NO_IC', error: 'the VM has no VMBus (or has stopped)' } });
      else void icRequests.handle(m.request).then((reply) => post({ type: 'ic-reply', id, reply }));
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
