/**
 * The x86 VM's IDE controller and PCI configuration mechanism are ours: the PIIX4 IDE emulation
 * the Generation 1 chipset uses (root-partition/devices/ide), at 00:07.1 as on Hyper-V, with its
 * legacy channels on IRQ 14 and 15 of v86's PIC and IOAPIC, and bus-master DMA into v86's RAM on
 * the VP thread. Our PCI bus takes ports 0xCF8–0xCFF; v86's other functions (host bridge, ISA
 * bridge, PIIX4 power management, VGA) stay on it through their own configuration spaces, and
 * v86's IDE function is left off, so firmware and Linux find only ours. SeaBIOS programs the
 * function (BAR4, decode enables) as on real hardware: nothing is pre-set here.
 */
import { V86DmaMemory } from '../../hypervisor/x86/v86-dma-memory.ts';
import type { X86Vp } from '../../hypervisor/x86/x86-vp.ts';
import { GEN1_PCI } from '../devices/gen1-chipset.ts';
import { AtaDrive } from '../devices/ide/ata-drive.ts';
import { IdeLegacy } from '../devices/ide/ide-channel-ports.ts';
import { Piix4Ide } from '../devices/ide/piix4-ide.ts';
import { PciBus } from '../devices/pci/pci-bus.ts';
import { PciCfg } from '../devices/pci/pci-config-space.ts';
import type { InterruptLine } from '../devices/port-io.ts';
import type { BlockBackend } from '../storage/block-backend.ts';
import { openDisk } from '../storage/open-disk.ts';
import { AcpiGpeAndHotplug } from './acpi-gpe-hotplug.ts';
import { QemuStyleIoBar } from './qemu-style-io-bar.ts';
import { isV86IdeFunction, V86PciFunction } from './v86-pci-function.ts';
import type { X86IdeStatus } from './x86-vm-messages.ts';
import { X86IoBus } from './x86-io-bus.ts';

/** Primary master, primary slave, secondary master, secondary slave. */
export const X86_IDE_MAX_DISKS = 4;

export class X86Ide {
  readonly bus: X86IoBus;
  readonly pci = new PciBus();
  readonly ide: Piix4Ide;
  private readonly disks: BlockBackend[] = [];

  constructor(vp: X86Vp, files: readonly string[], log: (message: string) => void) {
    if (files.length > X86_IDE_MAX_DISKS) throw new RangeError(`the IDE controller takes at most ${X86_IDE_MAX_DISKS} disks`);
    try {
      for (const f of files) this.disks.push(openDisk(f, { log }));
    } catch (e) {
      this.close();
      throw e;
    }
    const drive = (i: number) => (this.disks[i] ? new AtaDrive(this.disks[i]) : undefined);
    const line = (irq: number): InterruptLine => ({ set: (level) => (level ? vp.cpu.device_raise_irq(irq) : vp.cpu.device_lower_irq(irq)) });
    this.bus = new X86IoBus(vp.ports);
    this.ide = new Piix4Ide({
      memory: new V86DmaMemory(vp),
      bus: this.bus,
      primaryIrq: line(IdeLegacy.Primary.irq),
      secondaryIrq: line(IdeLegacy.Secondary.irq),
      primary: [drive(0), drive(1)],
      secondary: [drive(2), drive(3)],
      firmwareBmideBase: null,
    });
    const v86Pci = vp.cpu.devices.pci;
    for (let bdf = 0; bdf < 256; bdf++) {
      if (v86Pci.device_spaces[bdf] && !isV86IdeFunction(v86Pci, bdf)) this.pci.attach(bdf >> 3, bdf & 7, new V86PciFunction(v86Pci, bdf));
    }
    this.pci.attach(GEN1_PCI.piix4Ide.device, GEN1_PCI.piix4Ide.fn, new QemuStyleIoBar(this.ide.config, PciCfg.Bar4));
    this.bus.register(this.pci);
    this.bus.register(new AcpiGpeAndHotplug());
  }

  /** Our counters for the controller: port accesses (each one an exit on Hyper-V), interrupts, sectors. */
  status(): X86IdeStatus {
    const all = this.bus.allCounters();
    const names = [...this.ide.channelPorts.map((p) => p.name), this.ide.busMaster.name];
    let portReads = 0;
    let portWrites = 0;
    let faults = 0;
    for (const n of names) {
      const c = all.get(n);
      if (!c) continue;
      portReads += c.reads;
      portWrites += c.writes;
      faults += c.faults;
    }
    const [p, s] = this.ide.channels;
    return {
      disks: this.disks.length,
      portReads,
      portWrites,
      interrupts: p.interruptsRaised + s.interruptsRaised,
      sectors: p.sectorsTransferred + s.sectorsTransferred,
      faults,
      bmideBase: this.ide.config.bmideBase,
    };
  }

  close(): void {
    for (const d of this.disks.splice(0)) d.close();
  }
}
