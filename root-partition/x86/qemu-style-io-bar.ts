/**
 * A PCI function whose 16-byte I/O BAR answers sizing as a 32-bit I/O BAR. The PIIX4's BMIBA
 * (BAR4) decodes bits 15:4 and reads bits 31:16 as 0 (PIIX4 datasheet); QEMU's PIIX IDE keeps
 * bits 31:4 writable, and SeaBIOS's PCI set-up, written for QEMU (src/fw/pciinit.c), sizes an
 * I/O BAR from the 32-bit value it reads back: with bits 31:16 at 0 it takes the BAR for a huge
 * one and stops. Here the bits 31:16 written to the BAR are kept and read back beside the
 * function's own 16 bits, as QEMU does; the function decodes only bits 15:4 (a port address).
 */
import type { PciFunction } from '../devices/pci/pci-config-space.ts';
import type { AccessSize } from '../devices/port-io.ts';

export class QemuStyleIoBar implements PciFunction {
  readonly name: string;
  private upper = 0;

  constructor(
    private readonly inner: PciFunction,
    /** Configuration offset of the BAR (0x20 for BAR4). */
    private readonly bar: number,
  ) {
    this.name = inner.name;
  }

  readConfig(offset: number, size: AccessSize): number {
    const v = this.inner.readConfig(offset, size);
    if (size === 4 && offset === this.bar) return (v | this.upper) >>> 0;
    if (size === 2 && offset === this.bar + 2) return (v | (this.upper >>> 16)) >>> 0;
    return v;
  }

  writeConfig(offset: number, size: AccessSize, value: number): void {
    if (size === 4 && offset === this.bar) this.upper = (value & 0xffff0000) >>> 0;
    else if (size === 2 && offset === this.bar + 2) this.upper = ((value & 0xffff) << 16) >>> 0;
    this.inner.writeConfig(offset, size, value);
  }
}
