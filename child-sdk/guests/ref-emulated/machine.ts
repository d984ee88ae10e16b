// The unenlightened reference machine: what a guest that never looks for a hypervisor finds on a
// Generation 1 PC: the 8259 pair, PCI with the PIIX4 IDE function, up to four ATA disks, COM1.
// It uses no CPUID hypervisor leaf, synthetic MSR or hypercall, so it has no clock either: the
// platform emulates no PIT or RTC, and `uptime` says so instead of inventing one.
import { cli, halt } from "../../platform/hv";
import { puts, putDec, putHex } from "../../kernel/console";
import { ShellMachine } from "../../kernel/shell-machine";
import { BlockDevice, BLOCK_OK } from "../../drivers/block-device";
import { AtaDisk, ATA_DMA, ATA_PIO_MULTIPLE, ATA_PIO_STRING, ATA_PIO_WORD } from "../../drivers/ata-disk";
import { ataInterruptsTaken, ataPortAccesses } from "../../drivers/ata-interrupts";
import { PciFunction } from "../../drivers/pci-config";
import { picPendingRequests } from "../../drivers/pic8259";
import { uartInterrupts, uartPending } from "../../drivers/uart16550";
import { spuriousInterrupts } from "../../kernel/interrupts";
import { ne2000TakePending } from "../../drivers/ne2000";
import { netAttached, netPoll, netPrintCounters } from "../../net/ipv4-stack";
import { netCommand } from "../../net/net-shell";

/** IDE positions in `--disk` order: primary master, primary slave, secondary master, secondary slave. */
export const IDE_POSITIONS: u32 = 4;

function modeName(mode: u32): string {
  if (mode == ATA_DMA) return "bus-master DMA";
  if (mode == ATA_PIO_MULTIPLE) return "PIO multiple";
  if (mode == ATA_PIO_WORD) return "PIO word";
  return "PIO string";
}

export class EmulatedMachine extends ShellMachine {
  disks: StaticArray<AtaDisk | null> = new StaticArray<AtaDisk | null>(IDE_POSITIONS);
  count: u32 = 0;
  ide: PciFunction = -1;
  bmBase: u32 = 0;
  mode: u32 = ATA_PIO_STRING;
  /** Interrupts each channel took before a later attach on it reset the driver's count. */
  earlierInterrupts: StaticArray<u32> = new StaticArray<u32>(2);

  /**
   * Attaches the drive at IDE position `position` in `mode`; `vectorBase` is the slave PIC's
   * vector base (IRQ 14/15 → vectorBase + 6/7). Returns the driver status.
   */
  attach(position: u32, mode: u32, vectorBase: u32): i32 {
    const channel = position >> 1;
    // Attaching re-initialises the channel's driver record, counters included: keep what it took.
    this.earlierInterrupts[channel] += ataInterruptsTaken(channel);
    const disk = new AtaDisk();
    const irq: u32 = channel == 0 ? 14 : 15;
    const status = disk.attach(channel, position & 1, mode, this.bmBase, vectorBase + (irq - 8));
    if (status == BLOCK_OK) {
      this.disks[this.count] = disk;
      this.count++;
    }
    return status;
  }

  diskCount(): u32 { return this.count; }

  disk(index: u32): BlockDevice { return this.disks[index]!; }

  printDiskPath(index: u32): void {
    const d = this.disks[index]!;
    puts("ide ");
    puts(d.channel == 0 ? "primary " : "secondary ");
    puts(d.drive == 0 ? "master" : "slave");
    puts(" (ATA, ");
    puts(modeName(d.mode));
    puts(d.lba48 ? ", LBA48)" : ", LBA28)");
  }

  printOtherDevices(): void {
    puts("pci 00:");
    putHex((<u32>this.ide >> 3) & 0x1f, 2);
    puts(".");
    putDec(<u32>this.ide & 7);
    puts(": PIIX4 IDE (8086:7111), bus master at 0x");
    putHex(this.bmBase, 4);
    puts("\n");
    puts("pic: 8259 pair, IRQ 0-7 at vector 0x20, 8-15 at 0x28\n");
    puts("com1: 16550 at 0x3f8, IRQ 4 (receive interrupts), 115200 8N1\n");
  }

  ideInterrupts(channel: u32): u32 {
    return this.earlierInterrupts[channel] + ataInterruptsTaken(channel);
  }

  printCounters(): void {
    puts("ide: interrupts primary=");
    putDec(this.ideInterrupts(0));
    puts(" secondary=");
    putDec(this.ideInterrupts(1));
    puts(" port_exits=");
    putDec(ataPortAccesses());
    puts("\n");
    puts("interrupts: com1=");
    putDec(uartInterrupts());
    puts(" ide=");
    putDec(this.ideInterrupts(0) + this.ideInterrupts(1));
    puts(" unhandled=");
    putDec(spuriousInterrupts(0));
    puts(" pic_irr=0x");
    putHex(picPendingRequests(), 4);
    puts("\n");
    if (netAttached()) netPrintCounters();
    puts("signals: none (no hypervisor interface: every I/O is a port exit)\n");
  }

  printUptime(): void {
    puts("uptime: unknown: this guest counts no ticks because the platform emulates no PIT or RTC ");
    puts("and it does not use the hypervisor's reference time (boot with the ref-enlightened image for that)\n");
  }

  waitForInput(): bool {
    // Interrupts are delivered only at exits: nothing between this check and the halt exits, so
    // a byte that arrives after it wakes the halt instead of being slept through.
    // The network is served here too: frames the NIC took while the shell waited are answered
    // (ARP, ICMP echo, UDP echo) before the VP sleeps again.
    netPoll();
    if (uartPending() == 0 && !ne2000TakePending()) halt();
    netPoll();
    return false;
  }

  extraCommand(): bool {
    return netCommand();
  }

  powerOff(): void {
    cli();
    halt();
  }
}
