/**
 * One of v86's PCI functions (its host bridge, ISA bridge, PIIX4 power management, VGA) as a
 * function on our PCI bus: reads come from v86's copy of the configuration space, writes go
 * through v86's own write path, which moves the function's I/O BARs in v86's port table.
 */
import type { V86Pci } from '../../hypervisor/x86/v86-internals.ts';
import type { PciFunction } from '../devices/pci/pci-config-space.ts';
import type { AccessSize } from '../devices/port-io.ts';

export class V86PciFunction implements PciFunction {
  readonly name: string;
  private readonly bytes: Uint8Array;

  constructor(
    private readonly pci: V86Pci,
    /** Bus-0 device << 3 | function, as v86 numbers it. */
    private readonly bdf: number,
  ) {
    const space = pci.device_spaces[bdf];
    if (!space) throw new RangeError(`v86 has no PCI function at ${bdf >> 3}.${bdf & 7}`);
    this.name = `v86 ${pci.devices[bdf]?.name ?? 'function'} (00:${(bdf >> 3).toString(16).padStart(2, '0')}.${bdf & 7})`;
    this.bytes = new Uint8Array(space.buffer, space.byteOffset, space.byteLength);
  }

  readConfig(offset: number, size: AccessSize): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= (this.bytes[offset + i] ?? 0) << (8 * i);
    return v >>> 0;
  }

  writeConfig(offset: number, size: AccessSize, value: number): void {
    const address = (this.bdf << 8) | offset;
    if (size === 4) this.pci.pci_write32(address, value | 0);
    else if (size === 2) this.pci.pci_write16(address, value & 0xffff);
    else this.pci.pci_write8(address, value & 0xff);
  }
}

/** PCI class 01h subclass 01h: an IDE controller. */
export function isV86IdeFunction(pci: V86Pci, bdf: number): boolean {
  const space = pci.device_spaces[bdf];
  return space !== undefined && ((space[2]! >>> 16) & 0xffff) === 0x0101;
}
