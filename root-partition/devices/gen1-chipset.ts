import type { GuestMemory } from '../../hypervisor/guest-memory.ts';
import type { BlockBackend } from '../storage/block-backend.ts';
import { IoBus } from './io-bus.ts';
import { Pic8259 } from './pic/pic8259.ts';
import { Uart16550, type UartSink } from './uart/uart16550.ts';
import { ComPort } from './uart/uart16550-registers.ts';
import { PciBus } from './pci/pci-bus.ts';
import { I440bxHostBridge, Piix4IsaBridge } from './pci/pci-config-space.ts';
import { AtaDrive, type AtaDriveOptions } from './ide/ata-drive.ts';
import { Piix4Ide } from './ide/piix4-ide.ts';
import { IdeLegacy } from './ide/ide-channel-ports.ts';
import { stateError, type DeviceStateRecord, type SavableDevice } from './device-state.ts';
import { Ne2000Pci, NE2000_FIRMWARE_IO_BASE } from './ne2000/ne2000-pci.ts';

/** PCI placement of a Hyper-V Generation 1 VM (OpenVMM chipset_resources): host bridge 00:00.0, PIIX4 at 00:07. */
export const GEN1_PCI = { hostBridge: { device: 0, fn: 0 }, piix4Isa: { device: 7, fn: 0 }, piix4Ide: { device: 7, fn: 1 } } as const;

/**
 * Legacy NICs (NE2000, RTL8029 identity): PCI 00:0A.0 onward, INTA routed to IRQ 11, 10, 9, 5 in
 * turn, I/O windows of 32 ports from 0xC100. A choice of this project (Hyper-V's own legacy
 * adapter is a DEC 21140 whose placement is not documented in the sources used).
 */
export const GEN1_NIC = { firstPciDevice: 10, irqs: [11, 10, 9, 5], ioStride: 0x20 } as const;

export interface LegacyNicAttachment {
  mac: Uint8Array;
}

export interface IdeAttachment {
  backend: BlockBackend;
  identity?: AtaDriveOptions;
}

export interface Gen1ChipsetOptions {
  memory: GuestMemory;
  /** Drives by channel and position: [primary master, primary slave, secondary master, secondary slave]. */
  ide?: readonly (IdeAttachment | undefined)[];
  /** COM1 output (the console); COM2 output. */
  com1Sink?: UartSink;
  com2Sink?: UartSink;
  /** See Piix4IdeOptions.firmwareBmideBase. */
  firmwareBmideBase?: number | null;
  /** Legacy (NE2000) NICs, at most four. */
  nics?: readonly LegacyNicAttachment[];
}

/**
 * The legacy devices of a Generation 1 VM on one I/O bus: the 8259A pair, COM1/COM2, PCI
 * configuration mechanism #1 with the 440BX host bridge and the PIIX4 (ISA bridge + IDE).
 * The VP side hooks `pic.onInterruptRequest` and runs `pic.acknowledge()` at its delivery point;
 * the intercept handler forwards port I/O to `bus`.
 */
export class Gen1Chipset {
  readonly bus = new IoBus();
  readonly pic = new Pic8259();
  readonly com1: Uart16550;
  readonly com2: Uart16550;
  readonly pci = new PciBus();
  readonly ide: Piix4Ide;
  readonly nics: readonly Ne2000Pci[];

  constructor(opts: Gen1ChipsetOptions) {
    this.com1 = new Uart16550({ name: 'com1', base: ComPort.Com1.base, irq: this.pic.line(ComPort.Com1.irq), sink: opts.com1Sink });
    this.com2 = new Uart16550({ name: 'com2', base: ComPort.Com2.base, irq: this.pic.line(ComPort.Com2.irq), sink: opts.com2Sink });
    this.bus.register(this.pic);
    this.bus.register(this.com1);
    this.bus.register(this.com2);
    const drive = (i: number) => {
      const a = opts.ide?.[i];
      return a ? new AtaDrive(a.backend, a.identity) : undefined;
    };
    this.ide = new Piix4Ide({
      memory: opts.memory,
      bus: this.bus,
      primaryIrq: this.pic.line(IdeLegacy.Primary.irq),
      secondaryIrq: this.pic.line(IdeLegacy.Secondary.irq),
      primary: [drive(0), drive(1)],
      secondary: [drive(2), drive(3)],
      firmwareBmideBase: opts.firmwareBmideBase,
    });
    this.pci.attach(GEN1_PCI.hostBridge.device, GEN1_PCI.hostBridge.fn, new I440bxHostBridge());
    this.pci.attach(GEN1_PCI.piix4Isa.device, GEN1_PCI.piix4Isa.fn, new Piix4IsaBridge());
    this.pci.attach(GEN1_PCI.piix4Ide.device, GEN1_PCI.piix4Ide.fn, this.ide.config);
    const nics = opts.nics ?? [];
    if (nics.length > GEN1_NIC.irqs.length) throw new RangeError(`a Generation 1 VM takes at most ${GEN1_NIC.irqs.length} legacy NICs`);
    this.nics = nics.map((n, i) => {
      const irq = GEN1_NIC.irqs[i]!;
      const nic = new Ne2000Pci({
        bus: this.bus,
        mac: n.mac,
        irqNumber: irq,
        irq: this.pic.line(irq),
        name: `ne2000-${i}`,
        firmwareIoBase: NE2000_FIRMWARE_IO_BASE + i * GEN1_NIC.ioStride,
      });
      this.pci.attach(GEN1_NIC.firstPciDevice + i, 0, nic.config);
      return nic;
    });
    this.bus.register(this.pci);
  }

  private savable(): SavableDevice[] {
    return [this.pic, this.com1, this.com2, this.pci, this.ide, ...this.nics.map((n) => n.card)];
  }

  /** One record per device, for the VM's saved-state file. */
  saveState(): DeviceStateRecord[] {
    return this.savable().map((d) => d.saveState());
  }

  /**
   * Restores every device from its record (PCI before IDE, whose record re-applies its decoding).
   * All or nothing: a missing, unknown or bad record leaves every device as it was.
   */
  restoreState(records: readonly DeviceStateRecord[]): void {
    const devices = this.savable();
    const current = this.saveState();
    const byName = new Map(records.map((r) => [r.name, r]));
    const names = current.map((r) => r.name);
    for (const n of byName.keys()) if (!names.includes(n)) throw stateError(`no device named ${n} in this chipset`);
    for (const n of names) if (!byName.has(n)) throw stateError(`no record for ${n}`);
    try {
      devices.forEach((d, i) => d.restoreState(byName.get(names[i]!)!));
    } catch (err) {
      devices.forEach((d, i) => d.restoreState(current[i]!));
      throw err;
    }
  }

  /** VM reset of every device (the configuration the firmware step programmed stays). */
  reset(): void {
    this.pic.reset();
    this.com1.reset();
    this.com2.reset();
    this.ide.reset();
    for (const n of this.nics) n.card.reset();
  }
}
