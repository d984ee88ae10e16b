/**
 * The VMBus ACPI device for an x86 VM, as a Secondary System Description Table SeaBIOS adds to
 * its own tables: SeaBIOS installs every fw_cfg file named `acpi/…` as a table (src/fw/acpi.c,
 * acpi_setup). Linux's hv_vmbus binds to the device by its _HID "VMBUS" and walks its _CRS
 * (drivers/hv/vmbus_drv.c, vmbus_acpi_add: a device without _CRS fails); on x86 the VMBus
 * interrupt is the hypervisor callback vector, not an IRQ, so the _CRS is an empty template.
 * Hyper-V's own firmware names the device VMBS as well.
 */
import { acpiTable, amlDevice, amlBuffer, amlInteger, amlName, amlScope, amlString, resourceTemplate } from './acpi-aml.ts';

/** The fw_cfg file the table is given to SeaBIOS as. */
export const VMBUS_SSDT_FILE = 'acpi/ssdt-vmbus';

export function vmbusSsdt(): Uint8Array {
  return acpiTable({ signature: 'SSDT', revision: 2, oemId: 'TSVSOR', oemTableId: 'VMBUS', oemRevision: 1, creatorId: 'TSVS', creatorRevision: 1 }, [
    amlScope('\\_SB', [
      amlDevice('VMBS', [amlName('_HID', amlString('VMBUS')), amlName('_UID', amlInteger(0)), amlName('_CRS', amlBuffer(resourceTemplate([])))]),
    ]),
  ]);
}
