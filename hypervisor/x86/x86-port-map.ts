/**
 * The x86 VP's one port map: the host's devices claim their ports here, replacing whatever v86
 * had at those ports; every other port stays v86's (PIT, RTC, keyboard controller, its PIC).
 * A device sees only the ports it claimed, with accesses of 1, 2 or 4 bytes.
 */
import type { V86Cpu, V86PortEntry } from './v86-internals.ts';

export type X86AccessSize = 1 | 2 | 4;

/** What a host device offers the map (the same shape as the root partition's port-I/O devices). */
export interface X86PortDevice {
  readonly name: string;
  readonly ports: readonly { readonly base: number; readonly length: number }[];
  read(port: number, size: X86AccessSize): number;
  write(port: number, size: X86AccessSize, value: number): void;
}

export interface X86PortCounters {
  /** Port accesses served by host devices (each one an exit on Hyper-V). */
  hostPortAccesses: number;
}

export class X86PortMap {
  readonly counters: X86PortCounters = { hostPortAccesses: 0 };
  private readonly owners = new Map<number, string>();
  /** v86's entries the host devices replaced, by port: given back when the device lets the port go. */
  private readonly replaced = new Map<number, V86PortEntry>();

  constructor(private readonly cpu: V86Cpu) {}

  /** Gives `device` its ports. Two host devices never share a port. */
  attach(device: X86PortDevice): void {
    for (const r of device.ports) {
      if (r.base < 0 || r.length <= 0 || r.base + r.length > 0x10000)
        throw new RangeError(`${device.name}: port range 0x${r.base.toString(16)}+${r.length} is outside 0..0xFFFF`);
      for (let p = r.base; p < r.base + r.length; p++) {
        const other = this.owners.get(p);
        if (other) throw new Error(`${device.name}: port 0x${p.toString(16)} already belongs to ${other}`);
      }
    }
    for (const r of device.ports) {
      for (let p = r.base; p < r.base + r.length; p++) {
        this.owners.set(p, device.name);
        if (!this.replaced.has(p)) this.replaced.set(p, this.cpu.io.ports[p]!);
        this.cpu.io.ports[p] = this.entry(device, p);
      }
    }
  }

  /**
   * Takes `device`'s ports away from it (a PCI BAR moved, decoding switched off): each port goes
   * back to what v86 had there. The ranges are the ones `device` claimed (`ports` at attach time).
   */
  detach(device: X86PortDevice, ranges: X86PortDevice['ports'] = device.ports): void {
    for (const r of ranges) {
      for (let p = r.base; p < r.base + r.length; p++) {
        if (this.owners.get(p) !== device.name) continue;
        this.owners.delete(p);
        this.cpu.io.ports[p] = this.replaced.get(p)!;
      }
    }
  }

  /**
   * Observes writes of `size` bytes to a port that stays v86's (v86's handler runs first). For
   * events v86 models but does not report, e.g. the ACPI sleep request.
   */
  tapWrite(port: number, size: X86AccessSize, fn: (value: number) => void): void {
    if (this.owners.has(port)) throw new Error(`port 0x${port.toString(16)} belongs to ${this.owners.get(port)}: tap the device instead`);
    const entry = this.cpu.io.ports[port]!;
    const key = size === 1 ? 'write8' : size === 2 ? 'write16' : 'write32';
    const inner = entry[key].bind(entry.device ?? entry);
    entry[key] = (value: number) => {
      inner(value);
      fn(value);
    };
  }

  owner(port: number): string | undefined {
    return this.owners.get(port);
  }

  private entry(device: X86PortDevice, port: number): V86PortEntry {
    const c = this.counters;
    return {
      read8: () => (c.hostPortAccesses++, device.read(port, 1) & 0xff),
      read16: () => (c.hostPortAccesses++, device.read(port, 2) & 0xffff),
      read32: () => (c.hostPortAccesses++, device.read(port, 4) | 0),
      write8: (v) => (c.hostPortAccesses++, device.write(port, 1, v & 0xff)),
      write16: (v) => (c.hostPortAccesses++, device.write(port, 2, v & 0xffff)),
      write32: (v) => (c.hostPortAccesses++, device.write(port, 4, v >>> 0)),
      device,
    };
  }
}
