import type { IoBus } from '../io-bus.ts';
import type { InterruptLine } from '../port-io.ts';
import { PciCfg, PciCommand, PciConfigSpace } from '../pci/pci-config-space.ts';
import { NE_IO_EXTENT } from './dp8390-registers.ts';
import { Ne2000 } from './ne2000.ts';

/** PCI identity of the card: Realtek RTL8029 (10EC:8029), class 02/00/00 Ethernet (QEMU hw/net/ne2000.c). */
export const RTL8029_PCI_ID = { vendorId: 0x10ec, deviceId: 0x8029, revision: 0x00, classCode: 0x020000, headerType: 0x00 } as const;

/** The RTL8029's configuration space: BAR0 is the 32-port I/O window, INTA its interrupt. */
export class Rtl8029Config extends PciConfigSpace {
  onDecodeChange: (() => void) | undefined = undefined;

  constructor() {
    super('rtl8029', RTL8029_PCI_ID);
    this.set32(PciCfg.Bar0, 0x00000001); // I/O space indicator
    this.bytes[PciCfg.InterruptPin] = 1; // INTA#
    this.allowWrite(PciCfg.Command, 2, PciCommand.IoSpace);
    this.allowWrite(PciCfg.Bar0, 4, 0xffff & ~(NE_IO_EXTENT - 1)); // 32-byte window below 64 KiB
    this.allowWrite(PciCfg.InterruptLine, 1, 0xff);
  }

  get ioBase(): number {
    return this.get32(PciCfg.Bar0) & 0xffe0;
  }

  protected override changed(offset: number, size: number): void {
    const touches = (o: number, n: number) => offset < o + n && o < offset + size;
    if (touches(PciCfg.Command, 2) || touches(PciCfg.Bar0, 4)) this.onDecodeChange?.();
  }
}

export interface Ne2000PciOptions {
  bus: IoBus;
  mac: Uint8Array;
  /** The PIC line INTA is routed to (the firmware's PIRQ routing; written to Interrupt Line). */
  irqNumber: number;
  irq: InterruptLine;
  /**
   * What a BIOS would program at POST (no BIOS runs here): BAR0 = this base and I/O decoding on.
   * `null` leaves the function as at PCI reset, for a guest that programs PCI itself.
   */
  firmwareIoBase?: number | null;
  name?: string;
}

/** An NE2000 on the PCI bus: the card claims its ports wherever BAR0 and the command register put it. */
export class Ne2000Pci {
  readonly config = new Rtl8029Config();
  readonly card: Ne2000;
  /** Why the last BAR placement could not be decoded (ports owned by another device). */
  decodeConflict: string | undefined = undefined;
  private readonly bus: IoBus;

  constructor(opts: Ne2000PciOptions) {
    this.bus = opts.bus;
    this.card = new Ne2000({ name: opts.name ?? 'ne2000', mac: opts.mac, irq: opts.irq });
    this.config.writeConfig(PciCfg.InterruptLine, 1, opts.irqNumber);
    const fw = opts.firmwareIoBase === undefined ? NE2000_FIRMWARE_IO_BASE : opts.firmwareIoBase;
    if (fw !== null) {
      this.config.writeConfig(PciCfg.Bar0, 4, fw);
      this.config.writeConfig(PciCfg.Command, 2, PciCommand.IoSpace);
    }
    this.config.onDecodeChange = () => this.updateDecode();
    this.updateDecode();
  }

  private updateDecode(): void {
    const want = (this.config.command & PciCommand.IoSpace) !== 0 ? this.config.ioBase : 0;
    if (this.bus.isRegistered(this.card)) {
      if (this.card.base === want) return;
      this.bus.unregister(this.card);
    }
    this.card.base = want;
    if (!want) return;
    try {
      this.bus.register(this.card);
      this.decodeConflict = undefined;
    } catch (err) {
      this.decodeConflict = (err as Error).message;
      this.card.base = 0;
    }
  }
}

/** Where the firmware step puts the first NIC's window (after the PIIX4 BMIDE block at 0xC000). */
export const NE2000_FIRMWARE_IO_BASE = 0xc100;
