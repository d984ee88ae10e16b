/**
 * The ACPI general-purpose event block and the PCI hot-plug registers SeaBIOS's ACPI tables name
 * for a PIIX4 machine (the layout QEMU gives them: GPE0 at 0xAFE0, 2 bytes of status then 2 of
 * enable, per ACPI 6.4 §4.8.4.1; the PCI hot-plug block at 0xAE00: slots up, slots down, eject,
 * removable). v86 implements neither, so both read as all ones: Linux then sees every GPE pending,
 * runs the firmware's PCI hot-plug handler, reads "every slot went down" and ejects every PCI
 * function in slots 2–31 (the IDE controller among them). This VM has no PCI hot-plug: no event is
 * ever pending, no slot changes, none is removable; status bits are write-1-to-clear and the
 * enables are plain storage, as the ACPI specification has them.
 */
import type { AccessSize, PortIoDevice, PortRange } from '../devices/port-io.ts';

export const GPE0_BLOCK = 0xafe0;
const GPE0_LENGTH = 4;
export const PCI_HOTPLUG_BLOCK = 0xae00;
const PCI_HOTPLUG_LENGTH = 0x14;

export class AcpiGpeAndHotplug implements PortIoDevice {
  readonly name = 'acpi-gpe-pcihp';
  readonly ports: readonly PortRange[] = [
    { base: GPE0_BLOCK, length: GPE0_LENGTH },
    { base: PCI_HOTPLUG_BLOCK, length: PCI_HOTPLUG_LENGTH },
  ];
  /** GPE0_EN, two bytes. GPE0_STS never has a bit set: nothing raises a general-purpose event. */
  private enable = 0;

  read(port: number, size: AccessSize): number {
    let v = 0;
    for (let i = 0; i < size; i++) {
      const off = port + i - GPE0_BLOCK;
      if (off === 2 || off === 3) v |= ((this.enable >> (8 * (off - 2))) & 0xff) << (8 * i);
    }
    return v >>> 0;
  }

  write(port: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) {
      const off = port + i - GPE0_BLOCK;
      if (off === 2 || off === 3) {
        const shift = 8 * (off - 2);
        this.enable = (this.enable & ~(0xff << shift)) | (((value >>> (8 * i)) & 0xff) << shift);
      }
    }
  }
}
