/**
 * The root partition's I/O bus for an x86 VM: the same IoBus (routing, per-device counters, fault
 * containment) that every emulated-device VM uses, with each claim mirrored into the VP's port
 * map, so that v86's IN/OUT reach our device as a function call on the VP thread. A device that
 * lets ports go (a PCI BAR moved, decoding off) gives them back to v86.
 */
import type { X86PortDevice, X86PortMap } from '../../hypervisor/x86/x86-port-map.ts';
import { IoBus } from '../devices/io-bus.ts';
import type { PortIoDevice, PortRange } from '../devices/port-io.ts';

export class X86IoBus extends IoBus {
  private readonly mapped = new Map<PortIoDevice, { entry: X86PortDevice; ranges: readonly PortRange[] }>();

  constructor(private readonly portMap: X86PortMap) {
    super();
  }

  override register(device: PortIoDevice): void {
    super.register(device);
    // A snapshot: a relocatable device's `ports` changes when it moves.
    const ranges = device.ports.map((r) => ({ base: r.base, length: r.length }));
    const entry: X86PortDevice = {
      name: device.name,
      ports: ranges,
      read: (port, size) => this.read(port, size),
      write: (port, size, value) => this.write(port, size, value),
    };
    try {
      this.portMap.attach(entry);
    } catch (e) {
      super.unregister(device);
      throw e;
    }
    this.mapped.set(device, { entry, ranges });
  }

  override unregister(device: PortIoDevice): void {
    const m = this.mapped.get(device);
    if (m) {
      this.portMap.detach(m.entry, m.ranges);
      this.mapped.delete(device);
    }
    super.unregister(device);
  }
}
