import type { AccessSize, PortIoDevice, PortRange } from '../port-io.ts';
import { PciConfigSpace, type PciFunction } from './pci-config-space.ts';
import { checkPciIdentity, encodeState, openState, type DeviceStateRecord, type SavableDevice } from '../device-state.ts';

const STATE_NAME = 'pci-config';
const STATE_VERSION = 1;

/** Configuration mechanism #1 ports (PCI Local Bus Specification 3.0 §3.2.2.3.2). */
export const PCI_CONFIG_ADDRESS = 0xcf8;
export const PCI_CONFIG_DATA = 0xcfc;
const ENABLE = 0x80000000;

export function pciAddress(device: number, fn: number): number {
  return ((device & 0x1f) << 3) | (fn & 7);
}

/**
 * Bus 0 behind configuration mechanism #1. CONFIG_ADDRESS latches only on a 32-bit access to
 * 0xCF8; CONFIG_DATA (0xCFC–0xCFF) reaches the addressed function's dword at the byte offset of
 * the port. No function there, another bus, or the enable bit clear: reads all ones (master abort).
 */
export class PciBus implements PortIoDevice, SavableDevice {
  readonly name = 'pci-config';
  readonly ports: readonly PortRange[] = [{ base: PCI_CONFIG_ADDRESS, length: 8 }];
  address = 0;
  private readonly functions = new Map<number, PciFunction>();

  attach(device: number, fn: number, f: PciFunction): void {
    if (!Number.isInteger(device) || device < 0 || device > 31 || !Number.isInteger(fn) || fn < 0 || fn > 7) {
      throw new RangeError(`PCI 00:${device}.${fn} is not a valid address`);
    }
    const key = pciAddress(device, fn);
    if (this.functions.has(key)) throw new RangeError(`PCI 00:${device}.${fn} is already occupied`);
    this.functions.set(key, f);
  }

  functionAt(device: number, fn: number): PciFunction | undefined {
    return this.functions.get(pciAddress(device, fn));
  }

  /** CONFIG_ADDRESS and the configuration bytes of every attached function (keyed by device.function). */
  saveState(): DeviceStateRecord {
    const functions: Record<string, Uint8Array> = {};
    for (const [key, f] of this.functions) if (f instanceof PciConfigSpace) functions[`${key >> 3}.${key & 7}`] = f.bytes.slice();
    return { name: STATE_NAME, version: STATE_VERSION, state: encodeState({ address: this.address, functions }) };
  }

  /**
   * Restores the bytes of functions attached here. Functions whose writes have side effects
   * (the PIIX4 IDE's decoding) re-apply them from their own record, restored after this one.
   */
  restoreState(record: DeviceStateRecord): void {
    const r = openState(record, STATE_NAME, STATE_VERSION);
    const address = (r.int('address', 0, 0xffffffff) & 0x80fffffc) >>> 0;
    const saved = r.child('functions');
    const updates: [PciConfigSpace, Uint8Array][] = [];
    for (const [key, f] of this.functions) {
      if (!(f instanceof PciConfigSpace)) continue;
      const bytes = saved.bytes(`${key >> 3}.${key & 7}`, 256, 256);
      checkPciIdentity(`PCI 00:${key >> 3}.${key & 7}`, f.bytes, bytes);
      updates.push([f, bytes]);
    }
    this.address = address;
    for (const [f, bytes] of updates) f.bytes.set(bytes);
  }

  read(port: number, size: AccessSize): number {
    const ones = size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    if (port < PCI_CONFIG_DATA) return port === PCI_CONFIG_ADDRESS && size === 4 ? this.address : ones;
    const target = this.target(port, size);
    return target ? target.f.readConfig(target.offset, size) : ones;
  }

  write(port: number, size: AccessSize, value: number): void {
    if (port < PCI_CONFIG_DATA) {
      // Bits 30:24 are reserved and bits 1:0 select type 0/1 cycles; neither is kept.
      if (port === PCI_CONFIG_ADDRESS && size === 4) this.address = (value & 0x80fffffc) >>> 0;
      return;
    }
    const target = this.target(port, size);
    if (target) target.f.writeConfig(target.offset, size, value);
  }

  private target(port: number, size: AccessSize): { f: PciFunction; offset: number } | undefined {
    const byte = port - PCI_CONFIG_DATA;
    if (!(this.address & ENABLE) || byte + size > 4) return undefined;
    if ((this.address >>> 16) & 0xff) return undefined; // only bus 0 exists
    const f = this.functions.get((this.address >>> 8) & 0xff);
    return f ? { f, offset: (this.address & 0xfc) + byte } : undefined;
  }
}
