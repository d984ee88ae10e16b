/**
 * An x86 VM's VP thread: v86 runs the processor here, and the devices the root partition
 * provides for this VP kind sit on the same thread behind the VP's port map, so a port access is a
 * function call, as an exit handled in the hypervisor's own context would be. Today that is COM1,
 * our 16550, on IRQ 4 of v86's interrupt controllers.
 */
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { X86Vp } from '../../hypervisor/x86/x86-vp.ts';
import { Uart16550 } from '../devices/uart/uart16550.ts';
import type { FromX86Vp, ToX86Vp, X86VmThreadData } from './x86-vm-messages.ts';

const COM1_BASE = 0x3f8;
const COM1_IRQ = 4;

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

async function main(): Promise<void> {
  const vp = await X86Vp.create({
    memoryBytes: data.memoryBytes,
    bios: readFileSync(data.bios),
    ...(data.vgaBios ? { vgaBios: readFileSync(data.vgaBios) } : {}),
    kernel: readFileSync(data.kernel),
    ...(data.initrd ? { initrd: readFileSync(data.initrd) } : {}),
    cmdline: data.cmdline,
  });
  const consoleOut = new ConsoleBatch();
  const com1 = new Uart16550({
    name: 'com1',
    base: COM1_BASE,
    irq: { set: (level) => (level ? vp.cpu.device_raise_irq(COM1_IRQ) : vp.cpu.device_lower_irq(COM1_IRQ)) },
    sink: (bytes) => consoleOut.add(bytes),
  });
  vp.ports.attach(com1);
  port.on('message', (m: ToX86Vp) => {
    if (m.type === 'input') com1.receive(m.bytes);
    else if (m.type === 'stop') {
      void vp.destroy().then(() => {
        consoleOut.flush();
        post({ type: 'stopped', instructions: vp.instructions, hostPortAccesses: vp.ports.counters.hostPortAccesses });
        port.close();
      });
    }
  });
  vp.start();
  post({ type: 'started' });
}

main().catch((e: Error) => {
  post({ type: 'error', message: e.stack ?? e.message });
  port.close();
});
