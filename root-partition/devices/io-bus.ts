import type { AccessSize, PortIoDevice, PortRange } from './port-io.ts';
import { HvError } from '../../hypervisor/hv-error.ts';
import { tracer } from './device-trace.ts';

const trace = tracer('iobus');

/** x86 port space: 16-bit port numbers. */
export const PORT_SPACE = 0x10000;

/** Per-device access counters: what the benchmarks report as "exits per I/O". */
export interface PortIoCounters {
  reads: number;
  writes: number;
  /** String I/O exits (one per `rep ins/outs`, however many units it moved). */
  stringOps: number;
  /** Units moved by string I/O. */
  stringUnits: number;
  /** Exceptions thrown by the device and contained by the bus (a device bug; should stay 0). */
  faults: number;
}

interface Entry {
  readonly device: PortIoDevice;
  readonly counters: PortIoCounters;
  /** The ranges as claimed (a relocatable device's `ports` may change afterwards). */
  readonly claimed: readonly PortRange[];
}

const ALL_ONES: Record<AccessSize, number> = { 1: 0xff, 2: 0xffff, 4: 0xffffffff };

function validRange(r: PortRange): boolean {
  return Number.isInteger(r.base) && Number.isInteger(r.length) && r.base >= 0 && r.length >= 1 && r.base + r.length <= PORT_SPACE;
}

/**
 * The root partition's port-I/O bus for one VM: routes each intercepted IN/OUT to the device that
 * claimed the port. Lookup is one array index per access (the hot path of every emulated-I/O exit).
 * Unclaimed ports behave like an empty ISA bus: reads float high (all ones), writes vanish.
 * An access is routed by its first port, as the chipset decodes it; a device sees only its own ports.
 */
export class IoBus {
  private readonly slots: (Entry | undefined)[] = new Array(PORT_SPACE);
  private readonly entries = new Map<PortIoDevice, Entry>();
  /** The error of the last contained device fault, for diagnostics. */
  lastFault: unknown = undefined;

  /** Claims the device's port ranges; refuses overlaps with devices already on the bus. */
  register(device: PortIoDevice): void {
    if (this.entries.has(device)) throw new HvError('HV_ERR_PORT_CONFLICT', `${device.name} is already on the I/O bus`);
    // A snapshot: a relocatable device's `ports` may change after it is claimed.
    const claimedRanges = device.ports.map((r) => ({ base: r.base, length: r.length }));
    for (const r of claimedRanges) {
      if (!validRange(r)) throw new HvError('HV_ERR_PORT_RANGE', `${device.name}: invalid port range base=${r.base} length=${r.length}`);
      for (let p = r.base; p < r.base + r.length; p++) {
        const owner = this.slots[p];
        if (owner) throw new HvError('HV_ERR_PORT_CONFLICT', `${device.name}: port 0x${p.toString(16)} already belongs to ${owner.device.name}`);
      }
    }
    // Ranges of one device may not overlap each other either.
    const entry: Entry = { device, counters: { reads: 0, writes: 0, stringOps: 0, stringUnits: 0, faults: 0 }, claimed: claimedRanges };
    const claimed: number[] = [];
    for (const r of claimedRanges) {
      for (let p = r.base; p < r.base + r.length; p++) {
        if (this.slots[p]) {
          for (const q of claimed) this.slots[q] = undefined;
          throw new HvError('HV_ERR_PORT_CONFLICT', `${device.name}: its own ranges overlap at port 0x${p.toString(16)}`);
        }
        this.slots[p] = entry;
        claimed.push(p);
      }
    }
    this.entries.set(device, entry);
  }

  /** Releases the device's ports (used when a PCI BAR moves or I/O decoding is switched off). */
  unregister(device: PortIoDevice): void {
    const entry = this.entries.get(device);
    if (!entry) return;
    for (const r of entry.claimed) for (let p = r.base; p < r.base + r.length; p++) this.slots[p] = undefined;
    this.entries.delete(device);
  }

  isRegistered(device: PortIoDevice): boolean {
    return this.entries.has(device);
  }

  /** The device that decodes `port`, if any. */
  deviceAt(port: number): PortIoDevice | undefined {
    return this.slots[port & 0xffff]?.device;
  }

  counters(device: PortIoDevice): Readonly<PortIoCounters> | undefined {
    return this.entries.get(device)?.counters;
  }

  /** Counters of every device, by name. */
  allCounters(): Map<string, Readonly<PortIoCounters>> {
    const out = new Map<string, Readonly<PortIoCounters>>();
    for (const e of this.entries.values()) out.set(e.device.name, { ...e.counters });
    return out;
  }

  read(port: number, size: AccessSize): number {
    port &= 0xffff;
    const mask = ALL_ONES[size];
    if (mask === undefined) return 0xffffffff; // not an x86 access size: nothing decodes it
    const e = this.slots[port];
    if (!e) return mask;
    e.counters.reads++;
    try {
      return (e.device.read(port, size) & mask) >>> 0;
    } catch (err) {
      this.fault(e, err);
      return mask;
    }
  }

  write(port: number, size: AccessSize, value: number): void {
    port &= 0xffff;
    const e = this.slots[port];
    if (!e || ALL_ONES[size] === undefined) return;
    e.counters.writes++;
    try {
      e.device.write(port, size, (value & ALL_ONES[size]) >>> 0);
    } catch (err) {
      this.fault(e, err);
    }
  }

  /**
   * `rep ins`: `dst` is the bounds-checked guest-memory view of `count` units of `size` bytes.
   * Returns the units transferred: fewer than `count` when the device had no more (an ATA data
   * phase that ended); the units not transferred are left untouched in the view.
   */
  readString(port: number, size: AccessSize, dst: Uint8Array, count: number): number {
    port &= 0xffff;
    count = this.clampCount(dst, size, count);
    const e = this.slots[port];
    if (!e) {
      dst.fill(0xff, 0, count * size);
      return count;
    }
    e.counters.stringOps++;
    try {
      const n = e.device.readString ? e.device.readString(port, size, dst, count) : this.readUnits(e.device, port, size, dst, count);
      e.counters.stringUnits += n;
      return n;
    } catch (err) {
      this.fault(e, err);
      return 0;
    }
  }

  /** `rep outs` from the guest-memory view `src`. Returns the units transferred. */
  writeString(port: number, size: AccessSize, src: Uint8Array, count: number): number {
    port &= 0xffff;
    count = this.clampCount(src, size, count);
    const e = this.slots[port];
    if (!e) return count;
    e.counters.stringOps++;
    try {
      const n = e.device.writeString ? e.device.writeString(port, size, src, count) : this.writeUnits(e.device, port, size, src, count);
      e.counters.stringUnits += n;
      return n;
    } catch (err) {
      this.fault(e, err);
      return 0;
    }
  }

  private clampCount(view: Uint8Array, size: AccessSize, count: number): number {
    if (!Number.isInteger(count) || count < 0 || ALL_ONES[size] === undefined) return 0;
    return Math.min(count, Math.floor(view.length / size));
  }

  private readUnits(d: PortIoDevice, port: number, size: AccessSize, dst: Uint8Array, count: number): number {
    for (let i = 0, o = 0; i < count; i++) {
      const v = d.read(port, size);
      dst[o++] = v & 0xff;
      if (size >= 2) dst[o++] = (v >>> 8) & 0xff;
      if (size === 4) {
        dst[o++] = (v >>> 16) & 0xff;
        dst[o++] = (v >>> 24) & 0xff;
      }
    }
    return count;
  }

  private writeUnits(d: PortIoDevice, port: number, size: AccessSize, src: Uint8Array, count: number): number {
    for (let i = 0, o = 0; i < count; i++, o += size) {
      let v = src[o]!;
      if (size >= 2) v |= src[o + 1]! << 8;
      if (size === 4) v = (v | (src[o + 2]! << 16) | (src[o + 3]! << 24)) >>> 0;
      d.write(port, size, v);
    }
    return count;
  }

  private fault(e: Entry, err: unknown): void {
    trace?.(`${e.device.name} threw: ${err instanceof Error ? err.message : String(err)}`);
    e.counters.faults++;
    this.lastFault = err;
  }
}
